"""Daily webhook events, as Prefect events, routed to the leg that is waiting for them.

Prefect's live subscription can drop events and its backfill is short, so the listener
opens the subscription *before* the first dial and re-reads the room's event history when a
leg has waited `STALL_SECONDS` without an event, less often while such reads find nothing new
(up to `MAX_READ_INTERVAL_SECONDS` apart); both feed one de-duplicating router. (Re-reading
every few seconds regardless cost the Prefect server a history query per campaign every few
seconds, thousands of duplicate events per 100 dials, and server load for every campaign
waiting its turn.) A subscription that ends is opened again. The router trusts an event only
when Daily's signature, carried inside it by the receiver, verifies with the run's webhook
secret (flows/collect/verify.py), and only for legs this run started.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect.events.filters import (
    EventFilter,
    EventNameFilter,
    EventOccurredFilter,
    EventResourceFilter,
)

from daily_sip.flows.collect.verify import EventVerifier
from daily_sip.flows.report.escape import plain
from daily_sip.flows.supervision.per_loop import per_loop
from daily_sip.tasks.events import room_resource_id
from daily_sip.tasks.retries import retry

logger = logging.getLogger("daily_sip.listener")

# A leg that has waited this long without an event asks for a history read.
STALL_SECONDS = 5.0
# While history reads find nothing new they back off to this; a ringing leg must not wait a
# minute for an event the live stream missed (ring timeouts are ~30 s).
MAX_READ_INTERVAL_SECONDS = 15.0
# A live subscription that ended is opened again after this pause.
RESUBSCRIBE_SECONDS = 1.0
# A room-level event (``dialin.ready`` ...) counts only if Daily sent it after the run began to
# provision the room, give or take this much (Daily's clock against ours; keep hosts NTP-synced).
ROOM_EVENT_SKEW_SECONDS = 1.0


@dataclass
class DailyEvent:
    type: str
    payload: dict[str, Any]
    event_id: str
    event_ts: float | None
    received: float = field(default_factory=time.time)

    @property
    def latency(self) -> float | None:
        """Seconds from Daily sending the webhook to the flow seeing the event."""
        return None if self.event_ts is None else self.received - self.event_ts


class LegQueue(asyncio.Queue):
    """A leg's events; a ``get`` that has waited `STALL_SECONDS` in vain calls ``on_stall``.

    Every wait in the dialler is ``asyncio.wait_for(queue.get(), ...)``, so the stall signal
    comes from where the waiting happens, with no poller of its own.
    """

    def __init__(self, on_stall: Callable[[], None]) -> None:
        super().__init__()
        self._on_stall = on_stall

    async def get(self) -> DailyEvent:
        while True:
            try:
                return await asyncio.wait_for(super().get(), STALL_SECONDS)
            except TimeoutError:
                self._on_stall()


class EventRouter:
    """Verifies, de-duplicates by Daily event id and hands events to per-``userId`` queues.

    Only events whose Daily signature checks out (`flows.verify`) count; the others are
    counted in ``forged`` and logged. Only this run's legs get events: a ``userId`` the run
    created with `queue`, or a ``sessionId`` it `bind`-ed; anything else is ``foreign``.
    Room-level events (``dialin.ready`` carries no session of ours) count only when Daily sent
    them after ``room_since`` (set as the run provisions the room): an earlier campaign's in the
    same room, or a replay of one, is ignored and counted in ``replayed``.
    """

    def __init__(self, verifier: EventVerifier, room: str | None = None) -> None:
        self.verifier = verifier
        self.room = room
        self._seen: set[str] = set()
        self._queues: dict[str, asyncio.Queue[DailyEvent]] = {}
        self._session_user: dict[str, str] = {}
        self._orphans: dict[str, list[DailyEvent]] = defaultdict(list)
        self._refused: set[str] = set()
        self.room_events: asyncio.Queue[DailyEvent] = asyncio.Queue()
        self.latencies: list[float] = []
        self.duplicates = 0
        self.forged = 0
        self.replayed = 0
        self.foreign = 0
        self.room_since = time.time()  # moved to the provisioning time by the run
        self.accepted = 0
        self.on_stall: Callable[[], None] = lambda: None  # set by the RoomListener
        # Events arrive on the process's shared stream, outside this run's context: keep its logger.
        self.log = _run_logger()

    def queue(self, user_id: str) -> asyncio.Queue[DailyEvent]:
        """The queue of one of this run's legs; creating it is what makes ``user_id`` ours."""
        queue = self._queues.get(user_id)
        if queue is None:
            queue = self._queues[user_id] = LegQueue(lambda: self.on_stall())
        return queue

    def bind(self, session_id: str, user_id: str) -> None:
        """Tie a session to its userId; events that came first (by session only) catch up."""
        self._session_user[session_id] = user_id
        for event in self._orphans.pop(session_id, []):
            self._take(event, self.queue(user_id))

    def user_of(self, session_id: str) -> str | None:
        return self._session_user.get(session_id)

    def feed(self, event: Any) -> bool:
        """Take a ``prefect.events`` Event produced by our receiver; True if it was new and trusted."""
        prefect_id = str(getattr(event, "id", ""))
        if prefect_id in self._refused:
            return False  # the history re-read brings it again; counted once
        verified, reason = self.verifier.check(event.payload)
        if verified is None:
            self._refused.add(prefect_id)
            self.forged += 1
            self.log.warning(
                "ignored event %s (%s) claiming to be from Daily: %s",
                prefect_id,
                plain(getattr(event, "event", "?")),  # written by whoever forged it
                plain(reason),
            )
            return False
        body = verified.payload
        if self.room is not None and body.get("room") not in (None, self.room):
            self.foreign += 1
            return False
        daily_id = verified.event_id
        if daily_id in self._seen:
            self.duplicates += 1
            return False
        item = DailyEvent(verified.type, body, daily_id, _float(verified.event_ts))
        session = body.get("session_id") or ""
        user = body.get("user_id") or self._session_user.get(session)
        room_level = not user and not (session and verified.type.startswith("dialout."))
        if room_level and not self._of_this_run(item):
            self._refused.add(prefect_id)
            self.replayed += 1
            self.log.info(
                "ignored event %s (%s, Daily id %s): signed by Daily, but sent before this run "
                "provisioned the room (an earlier campaign's, or replayed)",
                prefect_id,
                plain(verified.type),
                plain(daily_id),
            )
            return False
        self._seen.add(daily_id)
        if user:
            if user in self._queues:
                self._take(item, self._queues[user])
            else:
                self.foreign += 1  # a signed event for a leg another run (or a person) started
        elif session and verified.type.startswith("dialout."):
            self._orphans[session].append(item)  # counted once `bind` shows it is this run's
        else:
            self._take(item, self.room_events)
        return True

    def _take(self, item: DailyEvent, queue: asyncio.Queue[DailyEvent]) -> None:
        """Hand an event to this run: only these count in ``accepted`` and the latencies."""
        self.accepted += 1
        if item.latency is not None:
            self.latencies.append(item.latency)
        queue.put_nowait(item)

    def _of_this_run(self, event: DailyEvent) -> bool:
        """Whether Daily sent a room-level event after this run began to provision the room."""
        sent = event.event_ts if event.event_ts is not None else _float(event.payload.get("timestamp"))
        # The payload's `timestamp` has whole seconds only: it may be up to 1 s early.
        return sent is not None and sent >= self.room_since - ROOM_EVENT_SKEW_SECONDS - (
            1.0 if event.event_ts is None else 0.0
        )


def _run_logger() -> Any:
    """The flow run's logger (so the warning shows in the run's logs), else the module's."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return logger


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def room_filter(room: str, since: datetime) -> EventFilter:
    return EventFilter(
        event=EventNameFilter(prefix=["daily."]),
        resource=EventResourceFilter(id=[room_resource_id(room)]),
        occurred=EventOccurredFilter(since=since, until=datetime.now(UTC) + timedelta(days=1)),
    )


def rooms_filter(since: datetime) -> EventFilter:
    """Every room's Daily events: the one subscription a process shares (`SharedStream`)."""
    return EventFilter(
        event=EventNameFilter(prefix=["daily."]),
        resource=EventResourceFilter(id_prefix=[room_resource_id("")]),
        occurred=EventOccurredFilter(since=since, until=datetime.now(UTC) + timedelta(days=1)),
    )


class SharedStream:
    """One live subscription to Daily's events for every campaign of this process.

    Campaigns that share a process (the in-process `daily-sip worker`) share its websocket:
    one subscriber per campaign made the Prefect server match every event against every
    campaign's filter, server load that grew with the number of campaigns waiting their turn.
    Events are handed to the listeners of the event's room. Opened by the first listener and
    closed with the last; one per event loop.
    """

    def __init__(self) -> None:
        self._rooms: dict[str, set[RoomListener]] = defaultdict(set)
        self._subscriber: Any = None
        self._pump_task: asyncio.Task | None = None
        self._opening = asyncio.Lock()

    async def add(self, listener: RoomListener) -> None:
        self._rooms[room_resource_id(listener.room)].add(listener)
        async with self._opening:  # the first dial waits until the stream is open
            if self._pump_task is None:
                try:
                    self._subscriber = await self._subscribe()
                except BaseException:
                    self.remove(listener)
                    raise
                # A fresh context: the pump serves every campaign, not the one that opened it.
                self._pump_task = asyncio.get_running_loop().create_task(
                    self._pump(), name="daily-events-live", context=contextvars.Context()
                )

    def remove(self, listener: RoomListener) -> None:
        key = room_resource_id(listener.room)
        self._rooms[key].discard(listener)
        if not self._rooms[key]:
            del self._rooms[key]
        if not self._rooms and self._pump_task is not None:
            self._pump_task.cancel()
            self._pump_task = None
            subscriber, self._subscriber = self._subscriber, None
            asyncio.get_running_loop().create_task(_close(subscriber))

    async def _subscribe(self) -> Any:
        from prefect.events.clients import get_events_subscriber

        # Event times come from Daily's second-resolution timestamps; look back a little.
        since = datetime.now(UTC) - timedelta(seconds=60)
        subscriber = get_events_subscriber(filter=rooms_filter(since))
        await subscriber.__aenter__()
        return subscriber

    def _deliver(self, event: Any) -> None:
        resource = getattr(getattr(event, "resource", None), "id", None)
        if not isinstance(resource, str):  # not a room's event: no listener has it
            return
        for listener in tuple(self._rooms.get(resource, ())):
            listener.router.feed(event)

    async def _pump(self) -> None:
        while True:
            try:
                async for event in self._subscriber:
                    self._deliver(event)
                reason = "closed by the server"
            except Exception as exc:  # reconnects exhausted (e.g. handshakes timing out under load)
                reason = f"{type(exc).__name__}: {exc}"
            # Without a live stream every event would wait for a stall: subscribe again, and read
            # what came meanwhile from the history (its backfill covers the gap too).
            for listener in self._listeners():
                listener.router.log.warning(
                    "live event stream for room %s ended (%s); subscribing again", listener.room, reason[:200]
                )
            await _close(self._subscriber)
            await asyncio.sleep(RESUBSCRIBE_SECONDS)
            self._subscriber = await retry(
                self._subscribe,
                when=lambda _error: True,  # for as long as the campaigns run
                delay=lambda _n, _error: RESUBSCRIBE_SECONDS,
                on_retry=lambda error, _n, _pause: logger.debug("re-subscribing failed: %s", error),
            )
            for listener in self._listeners():
                listener.resubscribed += 1
                listener._next_read = 0.0
                listener.stalled()

    def _listeners(self) -> list[RoomListener]:
        return [listener for group in self._rooms.values() for listener in group]


async def _close(subscriber: Any) -> None:
    if subscriber is not None:
        with contextlib.suppress(Exception):
            await subscriber.__aexit__(None, None, None)


shared_stream = per_loop(SharedStream)


class RoomListener:
    """Live events for one room (from the process's `SharedStream`), plus history reads when a
    leg stalls; feeds an EventRouter.

    Example:
        ```python
        router = EventRouter(EventVerifier(creds.webhook_secret), "standup")
        async with RoomListener("standup", router):
            ...  # dial; router.queue(user_id) yields that leg's events
        ```
    """

    def __init__(self, room: str, router: EventRouter) -> None:
        self.room = room
        self.router = router
        # Event times come from Daily's second-resolution timestamps; look back a little.
        self.since = datetime.now(UTC) - timedelta(seconds=60)
        self.history_reads = 0
        self.resubscribed = 0
        self._interval = STALL_SECONDS
        self._next_read = 0.0
        self._reading: asyncio.Task | None = None
        self._client: Any = None
        self._stream: SharedStream | None = None

    async def __aenter__(self) -> RoomListener:
        self._stream = shared_stream()
        await self._stream.add(self)  # subscribed before anything is dialled
        self.router.on_stall = self.stalled
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.router.on_stall = lambda: None
        if self._stream is not None:
            self._stream.remove(self)
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reading
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.__aexit__(None, None, None)

    def stalled(self) -> None:
        """A leg waited long without an event: read the history, unless a read is due later."""
        now = asyncio.get_running_loop().time()
        if self._reading is not None or now < self._next_read:
            return
        self._reading = asyncio.create_task(self._read_after_stall(), name="daily-events-history")

    async def _read_after_stall(self) -> None:
        try:
            found = await self.reconcile()
        except Exception as exc:  # the live stream still runs; try again at the next stall
            logger.debug("event history read failed: %s", exc)
            found = 0
        # Not a retry backoff: reads that find nothing are spaced out (a poll of the history).
        self._interval = STALL_SECONDS if found else min(self._interval * 2, MAX_READ_INTERVAL_SECONDS)
        self._next_read = asyncio.get_running_loop().time() + self._interval
        self._reading = None

    async def reconcile(self) -> int:
        """Read the room's event history from the Prefect API; feed it; return how many were new."""
        from prefect.client.orchestration import get_client

        if self._client is None:  # one client for the run: a new one costs a TLS context
            client = get_client()
            await client.__aenter__()
            self._client = client
        self.history_reads += 1
        new = 0
        page = await self._client.read_events(filter=room_filter(self.room, self.since), limit=50)
        while True:
            for event in page.events:
                new += self.router.feed(event)
            if not page.next_page:
                break
            page = await self._client.read_events_page(page.next_page)
        return new
