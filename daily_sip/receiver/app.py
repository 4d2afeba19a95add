"""Daily webhook receiver: verifies Daily's signed deliveries and turns them into Prefect events.

Daily reports dial-out outcomes only by webhook (https://docs.daily.co/reference/rest-api/webhooks).
This module serves one endpoint (``POST /webhook`` by default) plus ``GET /healthz``, and converts
every verified delivery with `daily_sip.receiver.events.to_prefect_event` (the event contract).

Request handling, in order:

1. Body capped at ``max_body_bytes`` (413 above it, so an event is never silently dropped by
   Prefect's own event-size limit after we answered 200). A client that disconnects before the
   whole body arrived is logged in one line and counted as ``aborted``.
2. Daily's verification ping (body ``{"test": "test"}``): 200, nothing emitted. When it carries a
   signature (either header present) it is verified and a bad one gets 401. An **unsigned** ping
   is answered 200 as well: Daily pings the URL before the create/update call returns, i.e.
   possibly before you know the secret Daily generated, and the reference does not say whether
   that ping is signed (listed as unknown). Accepting it is harmless because a ping emits nothing.
3. Signature, as Daily documents it (`daily_sip.tasks.signature`): ``key = base64decode(secret)``,
   ``expected = base64(HMAC-SHA256(key, "<X-Webhook-Timestamp>.<raw body bytes>"))``, compared with
   `hmac.compare_digest`. Missing header, mismatch, or a timestamp further than ``max_age_seconds``
   from now -> 401 and nothing emitted. Daily does not document the timestamp unit: values above
   1e11 are taken as milliseconds, others as seconds.
   Without a configured secret every non-ping delivery is answered 503 (nothing unverified ever
   reaches Prefect; Daily retries, so events arrive once the receiver restarts with the secret).
4. Envelope must be strict JSON (`daily_sip.strict_json`: no NaN/Infinity, at most 64 levels
   deep, integers of at most 64 digits) and an object with ``type`` and ``id`` (else 400).
5. Duplicate Daily event ids (bounded LRU with TTL, in memory) -> 200, nothing emitted. A delivery
   whose id is currently being emitted waits for that emit and shares its outcome.
6. One emit, awaited before answering. 200 only after the emitter returned; any emitter failure
   (Prefect unreachable, non-2xx, timeout) -> 503 so Daily redelivers, and the id is NOT marked
   seen. Ids are marked seen only after a successful emit.
   With a spool directory (``--spool-dir``, `daily_sip.receiver.spool`) instead: 200 once the
   event is appended and synced to the spool's journal; a background sender hands it to Prefect
   (batched, retried until taken). Daily sends one delivery at a time and counts slow answers
   as failures, so under load the spool is what keeps deliveries from falling behind.

Durability: the default emitter (`PrefectEventsEmitter`) POSTs the event to the Prefect server's
REST endpoint ``POST {PREFECT_API_URL}/events`` and treats only a 2xx (the server answers 204) as
success. The server answers only after it validated the event and handed it to its event bus,
from which the event persister writes it to the database (batched, within ~5 s on Prefect OSS).
That acknowledged HTTP write is stronger than `prefect.events.emit_event`, whose websocket client
buffers events and confirms them only at periodic checkpoints. A Prefect *server* crash inside
its own flush window can still lose an acknowledged event; that is Prefect's guarantee, not ours.
Retries are safe: the Prefect event id is derived from Daily's event id, and the server drops
events whose id it has already seen (in-memory cache and ``ON CONFLICT DO NOTHING`` in the DB).

The secret is kept as a `pydantic.SecretStr` and only its decoded key bytes are held, in an
object whose repr hides them; it is never logged or put into an error message. Prefer the
``DAILY_WEBHOOK_SECRET`` environment variable to ``--secret`` (command lines are visible in ps).

Heavy imports (Prefect, Starlette, uvicorn, pydantic) happen inside functions so that importing
this module (e.g. to register the CLI command) stays cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daily_sip import strict_json
from daily_sip.tasks.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, Verifier, proof_of

from .emitter import PrefectEventsEmitter
from .emitter import describe as _describe
from .relay import Relay, RelayTarget
from .spool import Spool, batch_emitter

if TYPE_CHECKING:
    from prefect.events import Event
    from pydantic import SecretStr
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

logger = logging.getLogger("daily_sip.receiver")

# Prefect's default maximum event size is 1.5 MB; an event holds the payload twice (parsed, and
# base64 in its signature proof), so about 2.4x the body.
DEFAULT_MAX_BODY_BYTES = 600_000
_PING = {"test": "test"}

Emitter = Callable[["Event"], Awaitable[None] | None]


class _SeenIds:
    """Bounded memory of Daily event ids already emitted: LRU capped at `maxsize`, TTL expiry."""

    def __init__(self, maxsize: int = 10_000, ttl_seconds: float = 24 * 3600) -> None:
        self.maxsize = maxsize
        self.ttl_seconds = ttl_seconds
        self._ids: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: str) -> bool:
        seen_at = self._ids.get(key)
        if seen_at is None:
            return False
        if time.monotonic() - seen_at > self.ttl_seconds:
            del self._ids[key]
            return False
        self._ids.move_to_end(key)
        return True

    def add(self, key: str) -> None:
        self._ids[key] = time.monotonic()
        self._ids.move_to_end(key)
        while len(self._ids) > self.maxsize:
            self._ids.popitem(last=False)


class WebhookReceiver:
    """The request handler behind `create_app` (available as ``app.state.receiver``)."""

    def __init__(
        self,
        secret: SecretStr | None,
        *,
        max_age_seconds: float | None = 300,
        emitter: Emitter | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        dedupe_size: int = 10_000,
        dedupe_ttl_seconds: float = 24 * 3600,
        spool: Spool | None = None,
        relay: Relay | None = None,
    ) -> None:
        # Import the event contract (and Prefect) now, not on the first request.
        from daily_sip.receiver.events import to_prefect_event

        self._to_event = to_prefect_event
        self._verifier = Verifier(secret, max_age_seconds) if secret is not None else None
        self.emitter: Emitter = emitter if emitter is not None else PrefectEventsEmitter.from_settings()
        self.max_body_bytes = max_body_bytes
        self.seen = _SeenIds(dedupe_size, dedupe_ttl_seconds)
        self._inflight: dict[str, asyncio.Future[bool]] = {}
        self.spool = spool
        self.relay = relay  # forwards verified deliveries to the webhook this one took over
        self.stats = {
            "accepted": 0,
            "duplicates": 0,
            "pings": 0,
            "rejected": 0,
            "emit_failures": 0,
            "aborted": 0,
        }

    def __repr__(self) -> str:
        return f"<WebhookReceiver verifier={self._verifier!r} emitter={self.emitter!r} stats={self.stats}>"

    @property
    def has_secret(self) -> bool:
        return self._verifier is not None

    async def aclose(self) -> None:
        if self.spool is not None:
            self.spool.close()
        if self.relay is not None:
            self.relay.close()
        close = getattr(self.emitter, "aclose", None)
        if close is not None:
            await close()

    async def _read_body(self, request: Request) -> bytes | None:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return None
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def _emit_once(self, key: str, event: Event) -> bool:
        """Emit unless an emit of the same id is in flight (then share its outcome)."""
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        ok = False
        try:
            result = self.emitter(event)
            if inspect.isawaitable(result):
                await result
            ok = True
            self.seen.add(key)
        except Exception as exc:
            logger.warning("emit of Daily event %s failed, answering 503: %s", key, _describe(exc))
        finally:
            self._inflight.pop(key, None)
            if not future.done():
                future.set_result(ok)
        return ok

    async def handle(self, request: Request) -> Response:
        from starlette.responses import JSONResponse

        def reject(status: int, error: str) -> Response:
            self.stats["rejected"] += 1
            return JSONResponse({"ok": False, "error": error}, status_code=status)

        from starlette.requests import ClientDisconnect

        try:
            body = await self._read_body(request)
        except ClientDisconnect:
            # Nothing was verified or emitted; Daily redelivers what it did not get an answer for.
            self.stats["aborted"] += 1
            logger.warning(
                "delivery aborted: the client disconnected before sending the whole body (Content-Length %s)",
                request.headers.get("content-length", "absent"),
            )
            return JSONResponse({"ok": False, "error": "incomplete body"}, status_code=400)
        if body is None:
            logger.warning("delivery refused: body larger than %d bytes", self.max_body_bytes)
            return reject(413, "body too large")
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        signature = request.headers.get(SIGNATURE_HEADER)
        # Only a tiny body can be the ping: unauthenticated input is not parsed beyond that.
        if len(body) <= 64 and _loads(body) == _PING:
            if (timestamp is not None or signature is not None) and self._verifier is not None:
                reason = self._verifier.check(timestamp, signature, body, time.time())
                if reason is not None:
                    logger.warning("verification ping refused: %s", reason)
                    return reject(401, reason)
            self.stats["pings"] += 1
            return JSONResponse({"ok": True, "ping": True})

        if self._verifier is None:
            logger.warning("delivery refused with 503: no webhook secret configured")
            return reject(503, "receiver has no webhook secret configured")
        reason = self._verifier.check(timestamp, signature, body, time.time())
        if reason is not None:
            logger.warning("delivery refused: %s", reason)
            return reject(401, reason)

        try:
            document = strict_json.loads(body)
        except strict_json.InvalidJSON as exc:
            logger.warning("delivery refused: signed body is not usable JSON: %s", exc)
            return reject(400, f"body is not usable JSON: {exc}")
        if not isinstance(document, dict):
            return reject(400, "body is not a JSON object")
        try:
            event = self._to_event(document, proof_of(timestamp, signature, body))
        except ValueError as exc:  # includes pydantic.ValidationError
            logger.warning("delivery refused: not a usable Daily envelope: %s", _describe(exc))
            return reject(400, "not a Daily webhook envelope")
        key = str(document["id"])

        if key in self.seen:
            self.stats["duplicates"] += 1
            return JSONResponse({"ok": True, "duplicate": True, "event_id": str(event.id)})
        if self.relay is not None:
            try:  # durable before Daily's 200; a redelivery is not queued twice
                self.relay.put(key, str(document["type"]), body)
            except OSError as exc:
                logger.warning(
                    "queueing Daily event %s for the relay failed, answering 503: %s", key, _describe(exc)
                )
                return JSONResponse(
                    {"ok": False, "error": "could not store the event"},
                    status_code=503,
                    headers={"Retry-After": "5"},
                )
        if self.spool is not None:
            try:
                self.spool.put(event)  # synchronous: no other delivery runs between check and add
            except OSError as exc:
                self.stats["emit_failures"] += 1
                logger.warning("spooling Daily event %s failed, answering 503: %s", key, _describe(exc))
                return JSONResponse(
                    {"ok": False, "error": "could not store the event"},
                    status_code=503,
                    headers={"Retry-After": "5"},
                )
            self.seen.add(key)
            self.stats["accepted"] += 1
            return JSONResponse({"ok": True, "event_id": str(event.id), "spooled": True})
        if not await self._emit_once(key, event):
            self.stats["emit_failures"] += 1
            return JSONResponse(
                {"ok": False, "error": "could not hand the event to Prefect"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        self.stats["accepted"] += 1
        return JSONResponse({"ok": True, "event_id": str(event.id)})


def _loads(body: bytes) -> Any:
    try:
        return strict_json.loads(body)
    except strict_json.InvalidJSON:
        return None


def _as_secret(secret: Any) -> SecretStr | None:
    from pydantic import SecretStr

    if secret is None:
        return None
    if isinstance(secret, SecretStr):
        value = secret.get_secret_value()
    else:
        value = str(secret)
    return SecretStr(value) if value.strip() else None


def create_app(
    secret: SecretStr | None,
    *,
    max_age_seconds: float | None = 300,
    path: str = "/webhook",
    emitter: Emitter | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    dedupe_size: int = 10_000,
    dedupe_ttl_seconds: float = 24 * 3600,
    spool_dir: Path | str | None = None,
    relay_to: RelayTarget | None = None,
) -> Starlette:
    """The receiver as a Starlette app (mountable in another ASGI app).

    ``emitter``: async callable taking a `prefect.events.Event`; it must return only once the
    event is durably accepted and raise otherwise. Default: `PrefectEventsEmitter` built from
    the current Prefect settings (``PREFECT_API_URL`` must be set). ``max_age_seconds=None``
    disables the timestamp freshness check. ``spool_dir``: answer Daily once the event is synced
    to a journal there and hand it to Prefect in the background (`daily_sip.receiver.spool`).
    ``relay_to``: also forward every verified delivery there, re-signed with its own secret, from
    a second journal in ``spool_dir`` (`daily_sip.receiver.relay`; needs ``spool_dir``).
    Raises ValueError for a secret that is not base64 and RuntimeError when no Prefect API URL
    is configured and no emitter was given.
    """
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    if relay_to is not None and not spool_dir:
        raise ValueError("relaying needs --spool-dir: the relay's queue is a journal there")
    handler = WebhookReceiver(
        _as_secret(secret),
        max_age_seconds=max_age_seconds,
        emitter=emitter,
        max_body_bytes=max_body_bytes,
        dedupe_size=dedupe_size,
        dedupe_ttl_seconds=dedupe_ttl_seconds,
        spool=Spool(Path(spool_dir)) if spool_dir else None,
        relay=Relay(Path(spool_dir), relay_to) if relay_to is not None and spool_dir else None,
    )

    async def healthz(request: Request) -> Response:
        body: dict[str, Any] = {"ok": True, "secret_configured": handler.has_secret, "stats": handler.stats}
        if handler.spool is not None:
            body["spool"] = {
                **handler.spool.stats,
                "pending": handler.spool.pending,
                "recovered": handler.spool.recovered,
            }
        if handler.relay is not None:
            body["relay"] = handler.relay.health()
        return JSONResponse(body)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        check = getattr(handler.emitter, "check", None)
        if check is not None and not await check():
            logger.warning(
                "Prefect API %s is not reachable yet; deliveries get 503 until it is",
                getattr(handler.emitter, "api_url", "?"),
            )
        sender = None
        spool = handler.spool
        if spool is not None:
            sender = asyncio.create_task(spool.run(batch_emitter(handler.emitter)), name="spool-sender")
        relay = handler.relay
        relayer = asyncio.create_task(relay.run(), name="relay-sender") if relay is not None else None
        try:
            yield
        finally:
            if relay is not None and relayer is not None:  # the rest waits in the relay journal
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(3):
                        await relay.drained()
                relayer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await relayer
            if spool is not None and sender is not None:
                # A graceful stop hands over what it can; the rest waits in the journal.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(3):
                        await spool.drained()
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await sender
            await handler.aclose()

    if not path.startswith("/"):
        path = "/" + path
    app = Starlette(
        routes=[Route(path, handler.handle, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])],
        lifespan=lifespan,
    )
    app.state.receiver = handler
    return app
