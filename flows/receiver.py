"""Daily webhook receiver: verifies Daily's signed deliveries and turns them into Prefect events.

Daily reports dial-out outcomes only by webhook (/work/shared/daily-api.md section 5). This module
serves one endpoint (``POST /webhook`` by default) plus ``GET /healthz``, and converts every
verified delivery with `flows.events.to_prefect_event` (the event contract lives there).

Request handling, in order:

1. Body capped at ``max_body_bytes`` (413 above it, so an event is never silently dropped by
   Prefect's own event-size limit after we answered 200).
2. Daily's verification ping (body ``{"test": "test"}``): 200, nothing emitted. When it carries a
   signature (either header present) it is verified and a bad one gets 401. An **unsigned** ping
   is answered 200 as well: Daily pings the URL before the create/update call returns, i.e.
   possibly before you know the secret Daily generated, and the reference does not say whether
   that ping is signed (listed as unknown). Accepting it is harmless because a ping emits nothing.
3. Signature, exactly per section 5.3: ``key = base64decode(secret)``, ``expected =
   base64(HMAC-SHA256(key, "<X-Webhook-Timestamp>.<raw body bytes>"))``, compared with
   `hmac.compare_digest`. Missing header, mismatch, or a timestamp further than ``max_age_seconds``
   from now -> 401 and nothing emitted. Daily does not document the timestamp unit: values above
   1e11 are taken as milliseconds, others as seconds.
   Without a configured secret every non-ping delivery is answered 503 (nothing unverified ever
   reaches Prefect; Daily retries, so events arrive once the receiver restarts with the secret).
4. Envelope must be a JSON object with ``type`` and ``id`` (else 400).
5. Duplicate Daily event ids (bounded LRU with TTL, in memory) -> 200, nothing emitted. A delivery
   whose id is currently being emitted waits for that emit and shares its outcome.
6. One emit, awaited before answering. 200 only after the emitter returned; any emitter failure
   (Prefect unreachable, non-2xx, timeout) -> 503 so Daily redelivers, and the id is NOT marked
   seen. Ids are marked seen only after a successful emit.

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
import base64
import binascii
import hashlib
import hmac
import inspect
import json
import logging
import math
import os
import signal
import socket
import sys
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    import httpx
    from prefect.events import Event
    from pydantic import SecretStr
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = [
    "EmitError",
    "PrefectEventsEmitter",
    "WebhookReceiver",
    "create_app",
    "receiver",
    "serve",
    "sign",
]

logger = logging.getLogger("flows.receiver")

SIGNATURE_HEADER = "X-Webhook-Signature"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
SECRET_ENVVAR = "DAILY_WEBHOOK_SECRET"
DEFAULT_MAX_BODY_BYTES = 1_000_000  # Prefect's default maximum event size is 1.5 MB
_PING = {"test": "test"}

Emitter = Callable[["Event"], Awaitable[None] | None]


class EmitError(RuntimeError):
    """The event could not be handed to Prefect durably; the delivery must be retried."""


# --------------------------------------------------------------------------- signature


def _decode_secret(secret: SecretStr) -> bytes:
    raw = secret.get_secret_value().strip()
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        # Deliberately no detail: the message must not echo any part of the secret.
        raise ValueError(
            "the Daily webhook secret is not valid base64 (Daily's `hmac` secrets are base64 strings)"
        ) from None
    if not key:
        raise ValueError("the Daily webhook secret is empty")
    return key


def sign(key: bytes, timestamp: str, body: bytes) -> str:
    """Daily's signature for a delivery (section 5.3), given the *decoded* key."""
    message = timestamp.encode("latin-1") + b"." + body
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode("ascii")


class _Verifier:
    """Holds the decoded HMAC key; its repr never shows it."""

    __slots__ = ("_key", "max_age_seconds")

    def __init__(self, secret: SecretStr, max_age_seconds: float | None) -> None:
        self._key = _decode_secret(secret)
        self.max_age_seconds = max_age_seconds

    def __repr__(self) -> str:
        return f"<DailyWebhookVerifier secret=********** max_age={self.max_age_seconds}>"

    __str__ = __repr__

    def __reduce__(self):  # never pickle the key
        raise TypeError("the webhook verifier cannot be pickled")

    def check(self, timestamp: str | None, signature: str | None, body: bytes, now: float) -> str | None:
        """None when valid, else a short reason (safe to log and return)."""
        if not timestamp or not signature:
            return "missing signature headers"
        try:
            ts = float(timestamp)
        except ValueError:
            return "invalid timestamp"
        if not math.isfinite(ts):
            return "invalid timestamp"
        if ts > 1e11:  # unit undocumented: treat as milliseconds
            ts /= 1000.0
        if self.max_age_seconds is not None and abs(now - ts) > self.max_age_seconds:
            return "stale timestamp"
        expected = sign(self._key, timestamp, body).encode("ascii")
        if not hmac.compare_digest(expected, signature.encode("latin-1", "replace")):
            return "signature mismatch"
        return None


# --------------------------------------------------------------------------- de-duplication


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


# --------------------------------------------------------------------------- emitter


class PrefectEventsEmitter:
    """Acknowledged write of one event: ``POST {api_url}/events`` with a one-element batch.

    Success only on a 2xx answer. Connection errors, timeouts and other statuses raise
    `EmitError`. One immediate re-send on a broken keep-alive connection (idempotent: same
    event id). Honours PREFECT_API_KEY / PREFECT_API_AUTH_STRING, TLS settings, custom client
    headers and, when the server has it enabled, Prefect's CSRF token protocol.
    """

    def __init__(
        self, api_url: str, *, headers: dict[str, str] | None = None, verify: Any = True, timeout: float = 5.0
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self._headers = dict(headers or {})
        self._verify = verify
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._csrf_client = str(uuid.uuid4())
        self._csrf_token: str | None = None

    def __repr__(self) -> str:  # headers may carry the API key: never shown
        return f"PrefectEventsEmitter(api_url={self.api_url!r})"

    @classmethod
    def from_settings(cls, *, timeout: float = 5.0) -> PrefectEventsEmitter:
        from tasks._prefect_api import prefect_api_connection

        api_url, headers, verify = prefect_api_connection("daily-sip-receiver")
        return cls(api_url, headers=headers, verify=verify, timeout=timeout)

    def _get_client(self) -> httpx.AsyncClient:
        import httpx

        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(
                headers=self._headers,
                verify=self._verify,
                timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 3.0)),
                limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            )
            self._loop = loop
        return self._client

    async def _fetch_csrf_token(self, client: httpx.AsyncClient) -> None:
        response = await client.get(f"{self.api_url}/csrf-token", params={"client": self._csrf_client})
        response.raise_for_status()
        self._csrf_token = response.json()["token"]

    async def __call__(self, event: Event) -> None:
        import httpx

        client = self._get_client()
        body = [event.model_dump(mode="json")]
        url = f"{self.api_url}/events"
        for attempt in (1, 2):
            headers = (
                {"Prefect-Csrf-Token": self._csrf_token, "Prefect-Csrf-Client": self._csrf_client}
                if self._csrf_token
                else None
            )
            try:
                response = await client.post(url, json=body, headers=headers)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                if attempt == 1:  # typically a keep-alive connection the server had closed
                    continue
                raise EmitError(f"Prefect API connection failed: {type(exc).__name__}") from exc
            except httpx.HTTPError as exc:
                raise EmitError(f"Prefect API unreachable: {type(exc).__name__}") from exc
            if response.is_success:
                return
            if response.status_code == 403 and attempt == 1 and "csrf" in response.text.lower():
                try:
                    await self._fetch_csrf_token(client)
                except (httpx.HTTPError, KeyError, ValueError) as exc:
                    raise EmitError("Prefect API CSRF token request failed") from exc
                continue
            raise EmitError(f"Prefect API answered {response.status_code} to POST /events")
        raise EmitError("Prefect API did not accept the event")  # pragma: no cover

    async def check(self) -> bool:
        """GET {api_url}/health: warms the connection pool; never raises."""
        try:
            response = await self._get_client().get(f"{self.api_url}/health")
        except Exception:
            return False
        return response.is_success

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            try:
                await client.aclose()
            except RuntimeError:  # created on a loop that is gone
                pass


# --------------------------------------------------------------------------- receiver


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
    ) -> None:
        # Import the event contract (and Prefect) now, not on the first request.
        from flows.events import to_prefect_event

        self._to_event = to_prefect_event
        self._verifier = _Verifier(secret, max_age_seconds) if secret is not None else None
        self.emitter: Emitter = emitter if emitter is not None else PrefectEventsEmitter.from_settings()
        self.max_body_bytes = max_body_bytes
        self.seen = _SeenIds(dedupe_size, dedupe_ttl_seconds)
        self._inflight: dict[str, asyncio.Future[bool]] = {}
        self.stats = {"accepted": 0, "duplicates": 0, "pings": 0, "rejected": 0, "emit_failures": 0}

    def __repr__(self) -> str:
        return f"<WebhookReceiver verifier={self._verifier!r} emitter={self.emitter!r} stats={self.stats}>"

    @property
    def has_secret(self) -> bool:
        return self._verifier is not None

    async def aclose(self) -> None:
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

        body = await self._read_body(request)
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

        document = _loads(body)
        if not isinstance(document, dict):
            return reject(400, "body is not a JSON object")
        try:
            event = self._to_event(document)
        except ValueError as exc:  # includes pydantic.ValidationError
            logger.warning("delivery refused: not a usable Daily envelope: %s", _describe(exc))
            return reject(400, "not a Daily webhook envelope")
        key = str(document["id"])

        if key in self.seen:
            self.stats["duplicates"] += 1
            return JSONResponse({"ok": True, "duplicate": True, "event_id": str(event.id)})
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
        return json.loads(body)
    except ValueError:  # includes UnicodeDecodeError
        return None


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]


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
) -> Starlette:
    """The receiver as a Starlette app (mountable in another ASGI app).

    ``emitter``: async callable taking a `prefect.events.Event`; it must return only once the
    event is durably accepted and raise otherwise. Default: `PrefectEventsEmitter` built from
    the current Prefect settings (``PREFECT_API_URL`` must be set). ``max_age_seconds=None``
    disables the timestamp freshness check.
    Raises ValueError for a secret that is not base64 and RuntimeError when no Prefect API URL
    is configured and no emitter was given.
    """
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    handler = WebhookReceiver(
        _as_secret(secret),
        max_age_seconds=max_age_seconds,
        emitter=emitter,
        max_body_bytes=max_body_bytes,
        dedupe_size=dedupe_size,
        dedupe_ttl_seconds=dedupe_ttl_seconds,
    )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True, "secret_configured": handler.has_secret, "stats": handler.stats})

    @asynccontextmanager
    async def lifespan(app: Starlette):
        check = getattr(handler.emitter, "check", None)
        if check is not None and not await check():
            logger.warning(
                "Prefect API %s is not reachable yet; deliveries get 503 until it is",
                getattr(handler.emitter, "api_url", "?"),
            )
        try:
            yield
        finally:
            await handler.aclose()

    if not path.startswith("/"):
        path = "/" + path
    app = Starlette(
        routes=[Route(path, handler.handle, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])],
        lifespan=lifespan,
    )
    app.state.receiver = handler
    return app


# --------------------------------------------------------------------------- serving


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP (not 0): asyncio only sets TCP_NODELAY on accepted sockets whose
    # proto says TCP; without it Nagle + delayed ACK add ~40 ms to every response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # connections made right after the URL is printed wait in the backlog
    except OSError:
        sock.close()
        raise
    return sock


def serve(
    host: str = "127.0.0.1",
    port: int = 8788,
    secret: Any = None,
    *,
    max_age_seconds: float | None = 300,
    path: str = "/webhook",
    emitter: Emitter | None = None,
    log_level: str = "info",
    access_log: bool = True,
) -> None:
    """Bind, build the app, print the webhook URL as the first stdout line, then serve.

    ``port=0`` picks a free port (the printed URL has the real one). SIGTERM / Ctrl-C shut down
    gracefully and return normally (exit code 0 for the CLI).
    """
    import uvicorn

    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(log_level.upper())
        logger.propagate = False

    sock = _bind(host, port)
    try:
        app = create_app(secret, max_age_seconds=max_age_seconds, path=path, emitter=emitter)
        if not app.state.receiver.has_secret:
            logger.warning(
                "no webhook secret (%s): verification pings are answered, every "
                "other delivery gets 503 until restarted with the secret",
                SECRET_ENVVAR,
            )
        bound_port = sock.getsockname()[1]
        url_host = f"[{host}]" if ":" in host else host
        route = path if path.startswith("/") else "/" + path
        print(f"http://{url_host}:{bound_port}{route}", flush=True)

        config = uvicorn.Config(
            app, log_level=log_level, access_log=access_log, lifespan="on", timeout_graceful_shutdown=5
        )
        server = uvicorn.Server(config)

        def _stop(signum: int, frame: Any) -> None:
            server.should_exit = True

        # uvicorn swaps in its own handlers while running and, after a graceful shutdown,
        # re-raises the captured signal against the handlers it found: ours (exit code 0)
        # instead of the defaults (killed by SIGTERM / KeyboardInterrupt).
        previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            server.run(sockets=[sock])
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        sock.close()


def receiver(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind; 0 picks a free one.")] = 8788,
    secret: Annotated[
        str | None,
        typer.Option(
            envvar=SECRET_ENVVAR,
            show_default=False,
            help="Daily webhook `hmac` secret (base64). Prefer the environment variable.",
        ),
    ] = None,
    max_age: Annotated[
        float,
        typer.Option(
            help="Reject deliveries whose X-Webhook-Timestamp is further than this from now (s).",
        ),
    ] = 300,
    credentials_block: Annotated[
        str | None,
        typer.Option(
            show_default=False,
            help="Take the secret from this saved DailyCredentials block (`daily-sip setup` saves "
            "`daily`) instead of --secret / DAILY_WEBHOOK_SECRET.",
        ),
    ] = None,
) -> None:
    """Receive Daily webhooks on http://HOST:PORT/webhook and emit them as Prefect events."""
    if credentials_block:
        from tasks import DailyCredentials

        try:
            block = DailyCredentials.load(credentials_block)
        except ValueError as exc:
            typer.echo(f"receiver: cannot load credentials block {credentials_block!r}: {exc}", err=True)
            raise typer.Exit(2) from None
        if block.webhook_secret is None:
            typer.echo(f"receiver: block {credentials_block!r} has no webhook_secret; run "
                       "`daily-sip setup` (it generates one)", err=True)
            raise typer.Exit(2)
        secret = block.webhook_secret.get_secret_value()
    if secret is None:
        secret = os.environ.get(SECRET_ENVVAR) or None
    try:
        serve(host, port, secret, max_age_seconds=max_age)
    except (ValueError, RuntimeError, OSError) as exc:
        typer.echo(f"receiver: {exc}", err=True)
        raise typer.Exit(2) from None


if __name__ == "__main__":
    typer.run(receiver)
