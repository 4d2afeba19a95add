"""Webhook delivery as Daily does it: signed envelopes, one ordered worker per webhook,
circuit-breaker or exponential retries, a verification ping, and injectable faults.

Daily POSTs `{"version", "type", "id", "payload", "event_ts"}` and signs it with the webhook's
base64 `hmac` secret; a URL that does not answer 200 to the `{"test":"test"}` ping makes the
create/update call fail with 400 (https://docs.daily.co/reference/rest-api/webhooks). The
registration itself lives in webhooks.py.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import random
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .clock import Clock, SystemClock, iso
from .config import EmulatorConfig
from .errors import ApiError
from .events import Event
from .route_faults import WEBHOOK, RouteFaults, delay_of
from .webhooks import WebhookRegistry

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("daily_sip.standin.webhooks")

ENVELOPE_VERSION = "1.0.0"
VERIFICATION_BODY = b'{"test":"test"}'
EXPONENTIAL_ATTEMPTS = 5
MAX_BACKOFF = 15 * 60.0
# A reordered event is sent right after the next one; if nothing follows within this
# long it goes out anyway so it is late rather than lost.
REORDER_HOLD = 0.25


def sign(secret_b64: str, timestamp: str, body: bytes) -> str:
    """base64(HMAC-SHA256(base64decode(secret), f"{timestamp}.{body}"))."""
    key = base64.b64decode(secret_b64)
    mac = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def _js_numbers(value: Any) -> Any:
    """Floats as JavaScript writes them: an integral float has no ``.0``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _js_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_js_numbers(v) for v in value]
    return value


def envelope(event: Event, event_ts: float) -> bytes:
    """The JSON body of one delivery; `event_ts` is when it is sent.

    Written the way ``JSON.stringify`` writes it (compact, UTF-8, non-ASCII not escaped, no
    ``1.0``), so a receiver that verifies the HMAC over ``timestamp + "." + JSON.stringify(event)``
    as in Daily's snippet (https://docs.daily.co/reference/rest-api/webhooks) gets the same bytes.
    """
    return json.dumps(
        _js_numbers(
            {
                "version": ENVELOPE_VERSION,
                "type": event.type,
                "id": event.id,
                "payload": event.payload,
                "event_ts": round(event_ts, 3),
            }
        ),
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


@dataclass
class DeliveryRecord:
    """One line of the delivery log (`GET /_emulator/deliveries`)."""

    kind: str  # "event" | "verification"
    event_id: str | None
    event_type: str
    webhook_uuid: str | None
    url: str
    attempt: int
    result: str  # ok | failed | dropped | skipped | duplicate
    status_code: int | None
    error: str | None
    at: str | None
    ts: float
    duration_ms: float | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Dispatcher:
    """Sends events to the domain's webhook: in order, with retries and faults."""

    def __init__(
        self,
        config: EmulatorConfig,
        registry: WebhookRegistry,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.registry = registry
        self.clock = clock or SystemClock()
        self.log: list[DeliveryRecord] = []
        self._queues: dict[str, asyncio.Queue[Event]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._client: httpx.AsyncClient | None = None
        self.route_faults: RouteFaults | None = None  # set by the API, which arms them
        self._late: set[asyncio.Task[None]] = set()
        self.reseed()

    def reseed(self) -> None:
        # A stream of its own so API traffic cannot shift which deliveries get faults.
        self.rng = random.Random(f"{self.config.seed}:webhooks")

    # -- lifecycle --------------------------------------------------------------

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx  # deferred: it is the slowest import and only webhooks need it

            # trust_env=False: a proxy from the environment must never see local sinks.
            self._client = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        return self._client

    async def close(self) -> None:
        self._cancel_workers()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _cancel_workers(self) -> None:
        for task in (*self._workers.values(), *self._late):
            task.cancel()
        self._workers.clear()
        self._queues.clear()

    def reset(self) -> None:
        """Stop all deliveries, forget the log and restart the fault RNG."""
        self._cancel_workers()
        self.log.clear()
        self.reseed()

    def forget(self, hook_uuid: str) -> None:
        """Stop delivering to a deleted webhook right away."""
        task = self._workers.pop(hook_uuid, None)
        if task is not None:
            task.cancel()
        self._queues.pop(hook_uuid, None)

    # -- publishing -------------------------------------------------------------

    def publish(self, event: Event) -> None:
        """Queue `event` for every webhook that subscribed to its type."""
        for hook in self.registry.list():
            if not hook.wants(event.type):
                continue
            queue = self._queues.get(hook.uuid)
            if queue is None:
                queue = self._queues[hook.uuid] = asyncio.Queue()
                self._workers[hook.uuid] = asyncio.get_running_loop().create_task(
                    self._worker(hook.uuid, queue), name=f"webhook-{hook.uuid}"
                )
            queue.put_nowait(event)

    async def _worker(self, hook_uuid: str, queue: asyncio.Queue[Event]) -> None:
        held: Event | None = None
        while True:
            try:
                if held is None:
                    event = await queue.get()
                else:
                    try:
                        event = await asyncio.wait_for(queue.get(), REORDER_HOLD)
                    except TimeoutError:
                        await self._deliver(hook_uuid, held, note="reordered")
                        held = None
                        continue
                # Always three draws per event so a seed gives the same faults every run.
                r_drop, r_reorder, r_dup = self.rng.random(), self.rng.random(), self.rng.random()
                aimed = self.route_faults.match(WEBHOOK + event.type) if self.route_faults else None
                if aimed is not None and aimed.mode == "drop":
                    self._record_fault(hook_uuid, event, "dropped", "route-fault-drop")
                    continue
                if aimed is not None and aimed.mode == "delay":
                    self._deliver_later(hook_uuid, event, delay_of(aimed, self.rng))
                    continue
                if r_drop < self.config.fault_drop:
                    self._record_fault(hook_uuid, event, "dropped", "fault-drop")
                    continue
                if held is None and r_reorder < self.config.fault_reorder:
                    held = event
                    continue
                await self._deliver(hook_uuid, event)
                if r_dup < self.config.fault_duplicate:
                    await self._deliver(hook_uuid, event, duplicate=True)
                if held is not None:
                    await self._deliver(hook_uuid, held, note="reordered")
                    held = None
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not silence the webhook for the rest of the run
                log.exception("webhook worker error")

    def _deliver_later(self, hook_uuid: str, event: Event, delay: float) -> None:
        async def later() -> None:
            await asyncio.sleep(delay)
            await self._deliver(hook_uuid, event, note=f"delayed {delay:.1f} s")

        task = asyncio.get_running_loop().create_task(later(), name=f"webhook-late-{event.id}")
        self._late.add(task)
        task.add_done_callback(self._late.discard)

    def _record_fault(self, hook_uuid: str, event: Event, result: str, note: str) -> None:
        hook = self.registry.hooks.get(hook_uuid)
        now = self.clock.now()
        self.log.append(
            DeliveryRecord(
                kind="event",
                event_id=event.id,
                event_type=event.type,
                webhook_uuid=hook_uuid,
                url=hook.url if hook else "",
                attempt=0,
                result=result,
                status_code=None,
                error=None,
                at=iso(now),
                ts=now,
                note=note,
            )
        )

    async def _deliver(
        self, hook_uuid: str, event: Event, *, duplicate: bool = False, note: str | None = None
    ) -> None:
        """Send one event with the webhook's retry policy, logging every attempt."""
        hook = self.registry.hooks.get(hook_uuid)
        if hook is None:
            return
        attempts = 1 if duplicate or hook.retry_type != "exponential" else EXPONENTIAL_ATTEMPTS
        for n in range(attempts):
            hook = self.registry.hooks.get(hook_uuid)
            if hook is None:
                return
            if hook.state == "FAILED":
                self._record_fault(hook_uuid, event, "skipped", "webhook FAILED")
                return
            sent_at = self.clock.now()
            body = envelope(event, sent_at)
            status, error, ms = await self._post(hook.url, hook.hmac, hook.basic_auth, body)
            ok = status == 200
            result = "duplicate" if duplicate else ("ok" if ok else "failed")
            self.log.append(
                DeliveryRecord(
                    kind="event",
                    event_id=event.id,
                    event_type=event.type,
                    webhook_uuid=hook_uuid,
                    url=hook.url,
                    attempt=n + 1,
                    result=result,
                    status_code=status,
                    error=error,
                    at=iso(sent_at),
                    ts=sent_at,
                    duration_ms=ms,
                    note=note,
                )
            )
            if duplicate:
                return
            if ok:
                self.registry.record_success(hook)
                return
            if self.registry.record_failure(hook):
                log.info("webhook %s tripped to FAILED", hook_uuid)
                return
            if n + 1 < attempts:
                # Daily's own retry schedule, played by the stand-in: not ours (tasks.retries).
                await asyncio.sleep(min(self.config.webhook_retry_base * 2**n, MAX_BACKOFF))
        if attempts > 1:
            self._record_fault(hook_uuid, event, "dropped", f"gave up after {attempts} attempts")

    async def _post(
        self, url: str, secret: str, basic_auth: str | None, body: bytes
    ) -> tuple[int | None, str | None, float]:
        timestamp = str(int(self.clock.now()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "daily-standin-webhooks/1.0",
            "X-Webhook-Signature": sign(secret, timestamp, body),
            "X-Webhook-Timestamp": timestamp,
        }
        if basic_auth:
            headers["Authorization"] = f"Basic {basic_auth}"
        import httpx

        timeout = self.config.webhook_timeout
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                response = await self.client.post(url, content=body, headers=headers)
            status, error = response.status_code, None
        except TimeoutError:
            status, error = None, f"timeout: no answer within {timeout:g}s"
        except httpx.HTTPError as exc:
            status, error = None, f"{type(exc).__name__}: {exc}".rstrip(": ")
        return status, error, round((time.perf_counter() - started) * 1000, 1)

    # -- verification -----------------------------------------------------------

    async def verify(self, url: str, secret: str, basic_auth: str | None) -> None:
        """The create/update ping: `{"test":"test"}`, signed; anything but a 200 is a 400."""
        now = self.clock.now()
        status, error, ms = await self._post(url, secret, basic_auth, VERIFICATION_BODY)
        self.log.append(
            DeliveryRecord(
                kind="verification",
                event_id=None,
                event_type="webhook.verification",
                webhook_uuid=None,
                url=url,
                attempt=1,
                result="ok" if status == 200 else "failed",
                status_code=status,
                error=error,
                at=iso(now),
                ts=now,
                duration_ms=ms,
            )
        )
        if status == 200:
            return
        got = f"HTTP {status}" if status is not None else (error or "no answer")
        raise ApiError(
            400,
            "invalid-request-error",
            f"webhook verification failed: POST {url} returned {got}; "
            f"the URL must answer 200 within {self.config.webhook_timeout:g}s",
        )

    def deliveries(self, **filters: str | None) -> list[dict[str, Any]]:
        """The delivery log, optionally filtered by any record field."""
        rows = [r.to_json() for r in self.log]
        for key, value in filters.items():
            if value is not None:
                rows = [r for r in rows if str(r.get(key)) == value]
        return rows

    def queued(self) -> dict[str, int]:
        return {uuid: q.qsize() for uuid, q in self._queues.items()}
