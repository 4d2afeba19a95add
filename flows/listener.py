"""Daily webhook events, as Prefect events, routed to the leg that is waiting for them.

Prefect's live subscription can drop events and its backfill is short, so the listener
opens the subscription *before* the first dial and also re-reads the room's event history
now and then; both feed one de-duplicating router.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
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


class EventRouter:
    """De-duplicates by Daily event id and hands events to per-``userId`` queues."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._queues: dict[str, asyncio.Queue[DailyEvent]] = defaultdict(asyncio.Queue)
        self._session_user: dict[str, str] = {}
        self._orphans: dict[str, list[DailyEvent]] = defaultdict(list)
        self.room_events: asyncio.Queue[DailyEvent] = asyncio.Queue()
        self.latencies: list[float] = []
        self.duplicates = 0

    def queue(self, user_id: str) -> asyncio.Queue[DailyEvent]:
        return self._queues[user_id]

    def bind(self, session_id: str, user_id: str) -> None:
        """Tie a session to its userId; events that came first (by session only) catch up."""
        self._session_user[session_id] = user_id
        for event in self._orphans.pop(session_id, []):
            self._queues[user_id].put_nowait(event)

    def feed(self, event: Any) -> None:
        """Take a ``prefect.events`` Event produced by our receiver."""
        payload = event.payload or {}
        daily_id = str(payload.get("daily_event_id") or event.id)
        if daily_id in self._seen:
            self.duplicates += 1
            return
        self._seen.add(daily_id)
        daily_type = payload.get("daily_type") or event.event.removeprefix("daily.")
        body = payload.get("daily") or {}
        item = DailyEvent(daily_type, body, daily_id, _float(payload.get("event_ts")))
        if item.latency is not None:
            self.latencies.append(item.latency)
        user = body.get("user_id") or self._session_user.get(body.get("session_id") or "")
        if user:
            self._queues[user].put_nowait(item)
        elif body.get("session_id") and daily_type.startswith("dialout."):
            self._orphans[body["session_id"]].append(item)
        else:
            self.room_events.put_nowait(item)


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
    """Live subscription plus periodic history reads for one room, feeding an EventRouter."""

    def __init__(self, room: str, router: EventRouter, *, reconcile_every: float = 3.0) -> None:
        self.room = room
        self.router = router
        self.reconcile_every = reconcile_every
        # Event times come from Daily's second-resolution timestamps; look back a little.
        self.since = datetime.now(UTC) - timedelta(seconds=60)
        self._tasks: list[asyncio.Task] = []
        self._subscriber: Any = None

    async def __aenter__(self) -> RoomListener:
        from prefect.events.clients import get_events_subscriber

        self._subscriber = get_events_subscriber(filter=room_filter(self.room, self.since))
        await self._subscriber.__aenter__()  # subscribed before anything is dialled
        self._tasks = [
            asyncio.create_task(self._pump(), name="daily-events-live"),
            asyncio.create_task(self._reconcile_loop(), name="daily-events-history"),
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self._subscriber.__aexit__(None, None, None)

    async def _pump(self) -> None:
        async for event in self._subscriber:
            self.router.feed(event)

    async def reconcile(self) -> int:
        """Read the room's event history from the Prefect API and feed what was missed."""
        from prefect.client.orchestration import get_client

        fed = 0
        async with get_client() as client:
            page = await client.read_events(filter=room_filter(self.room, self.since), limit=50)
            while True:
                for event in page.events:
                    self.router.feed(event)
                    fed += 1
                if not page.next_page:
                    break
                page = await client.read_events_page(page.next_page)
        return fed

    async def _reconcile_loop(self) -> None:
        while True:
            await asyncio.sleep(self.reconcile_every)
            try:
                await self.reconcile()
            except Exception as exc:  # the live stream still runs; try again next round
                logger.debug("event history read failed: %s", exc)
