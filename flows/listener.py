"""Daily webhook events, as Prefect events, routed to the leg that is waiting for them.

Prefect's live subscription can drop events and its backfill is short, so the listener
opens the subscription *before* the first dial, and reads the room's event history only when
a leg has been waiting ``STALL_SECONDS`` without an event: from a moving ``since`` (the newest
event seen, less ``LOOKBACK_SECONDS`` for late deliveries), and less often while reads find
nothing new. Both feed one de-duplicating router. (Re-reading the whole history every 3 s cost
~6,200 duplicate events per 100 dials, and server load for every campaign waiting its turn.)
"""

from __future__ import annotations

import asyncio
import contextlib
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

logger = logging.getLogger("daily_sip.listener")

# A leg that has waited this long without an event asks for one history read of its room.
STALL_SECONDS = 5.0
# Reads that find nothing new back off (doubling) to at most this interval.
MAX_READ_INTERVAL_SECONDS = 15.0
# History reads start this far before the newest event seen: Daily retries late deliveries.
LOOKBACK_SECONDS = 60.0


def room_resource_id(room: str) -> str:
    return f"daily.room.{room}"


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
    """A leg's events; a ``get`` that waits ``STALL_SECONDS`` in vain calls ``on_stall``."""

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
    """De-duplicates by Daily event id and hands events to per-``userId`` queues."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._queues: dict[str, LegQueue] = {}
        # Set by RoomListener: called when a leg waits long without an event.
        self.on_stall: Callable[[], None] = lambda: None
        self._session_user: dict[str, str] = {}
        self._orphans: dict[str, list[DailyEvent]] = defaultdict(list)
        self.room_events: asyncio.Queue[DailyEvent] = asyncio.Queue()
        self.latencies: list[float] = []
        self.duplicates = 0

    def queue(self, user_id: str) -> LegQueue:
        queue = self._queues.get(user_id)
        if queue is None:
            queue = self._queues[user_id] = LegQueue(lambda: self.on_stall())
        return queue

    def bind(self, session_id: str, user_id: str) -> None:
        """Tie a session to its userId; events that came first (by session only) catch up."""
        self._session_user[session_id] = user_id
        for event in self._orphans.pop(session_id, []):
            self.queue(user_id).put_nowait(event)

    def feed(self, event: Any) -> bool:
        """Take a ``prefect.events`` Event produced by our receiver; False if seen before."""
        payload = event.payload or {}
        daily_id = str(payload.get("daily_event_id") or event.id)
        if daily_id in self._seen:
            self.duplicates += 1
            return False
        self._seen.add(daily_id)
        daily_type = payload.get("daily_type") or event.event.removeprefix("daily.")
        body = payload.get("daily") or {}
        item = DailyEvent(daily_type, body, daily_id, _float(payload.get("event_ts")))
        if item.latency is not None:
            self.latencies.append(item.latency)
        user = body.get("user_id") or self._session_user.get(body.get("session_id") or "")
        if user:
            self.queue(user).put_nowait(item)
        elif body.get("session_id") and daily_type.startswith("dialout."):
            self._orphans[body["session_id"]].append(item)
        else:
            self.room_events.put_nowait(item)
        return True


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


class RoomListener:
    """Live subscription for one room, plus history reads when a leg stalls; feeds an EventRouter."""

    def __init__(self, room: str, router: EventRouter) -> None:
        self.room = room
        self.router = router
        # Event times come from Daily's second-resolution timestamps; look back a little.
        self.started = datetime.now(UTC) - timedelta(seconds=60)
        self.since = self.started
        self.history_reads = 0
        self._interval = STALL_SECONDS
        self._next_read = 0.0
        self._reading: asyncio.Task | None = None
        self._pump_task: asyncio.Task | None = None
        self._subscriber: Any = None
        self._client: Any = None

    async def __aenter__(self) -> RoomListener:
        from prefect.events.clients import get_events_subscriber

        self._subscriber = get_events_subscriber(filter=room_filter(self.room, self.since))
        await self._subscriber.__aenter__()  # subscribed before anything is dialled
        self._pump_task = asyncio.create_task(self._pump(), name="daily-events-live")
        self.router.on_stall = self.stalled
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.router.on_stall = lambda: None
        for task in (self._pump_task, self._reading):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        with contextlib.suppress(Exception):
            await self._subscriber.__aexit__(None, None, None)
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.__aexit__(None, None, None)

    async def _pump(self) -> None:
        async for event in self._subscriber:
            self.router.feed(event)

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
        self._interval = STALL_SECONDS if found else min(self._interval * 2, MAX_READ_INTERVAL_SECONDS)
        self._next_read = asyncio.get_running_loop().time() + self._interval
        self._reading = None

    async def reconcile(self) -> int:
        """Read the room's event history since ``since``; feed it; return how many were new."""
        from prefect.client.orchestration import get_client

        if self._client is None:  # one client for the run: a new one costs a TLS context
            client = get_client()
            await client.__aenter__()
            self._client = client
        self.history_reads += 1
        new, newest = 0, None
        page = await self._client.read_events(filter=room_filter(self.room, self.since), limit=50)
        while True:
            for event in page.events:
                new += self.router.feed(event)
                newest = event.occurred if newest is None else max(newest, event.occurred)
            if not page.next_page:
                break
            page = await self._client.read_events_page(page.next_page)
        if newest is not None:
            self.since = max(self.since, newest - timedelta(seconds=LOOKBACK_SECONDS))
        return new
