"""Daily webhook events, as Prefect events, routed to the leg that is waiting for them.

Prefect's live subscription can drop events and its backfill is short, so the listener
opens the subscription *before* the first dial and also re-reads the room's event history
now and then; both feed one de-duplicating router. The router trusts an event only when Daily's
signature, carried inside it by the receiver, verifies with the run's webhook secret
(flows/verify.py), and only for legs this run started.
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

from .verify import EventVerifier

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
    """Verifies, de-duplicates by Daily event id and hands events to per-``userId`` queues.

    Only events whose Daily signature checks out (`flows.verify`) count; the others are
    counted in ``forged`` and logged. Only this run's legs get events: a ``userId`` the run
    created with `queue`, or a ``sessionId`` it `bind`-ed; anything else is ``foreign``.
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
        self.foreign = 0
        self.accepted = 0

    def queue(self, user_id: str) -> asyncio.Queue[DailyEvent]:
        """The queue of one of this run's legs; creating it is what makes ``user_id`` ours."""
        return self._queues.setdefault(user_id, asyncio.Queue())

    def bind(self, session_id: str, user_id: str) -> None:
        """Tie a session to its userId; events that came first (by session only) catch up."""
        self._session_user[session_id] = user_id
        for event in self._orphans.pop(session_id, []):
            self.queue(user_id).put_nowait(event)

    def user_of(self, session_id: str) -> str | None:
        return self._session_user.get(session_id)

    def feed(self, event: Any) -> None:
        """Take a ``prefect.events`` Event produced by our receiver."""
        prefect_id = str(getattr(event, "id", ""))
        if prefect_id in self._refused:
            return  # the history re-read brings it again; counted once
        verified, reason = self.verifier.check(event.payload)
        if verified is None:
            self._refused.add(prefect_id)
            self.forged += 1
            _run_logger().warning(
                "ignored event %s (%s) claiming to be from Daily: %s", prefect_id,
                getattr(event, "event", "?"), reason,
            )
            return
        body = verified.payload
        if self.room is not None and body.get("room") not in (None, self.room):
            self.foreign += 1
            return
        daily_id = verified.event_id
        if daily_id in self._seen:
            self.duplicates += 1
            return
        self._seen.add(daily_id)
        item = DailyEvent(verified.type, body, daily_id, _float(verified.event_ts))
        self.accepted += 1
        if item.latency is not None:
            self.latencies.append(item.latency)
        session = body.get("session_id") or ""
        user = body.get("user_id") or self._session_user.get(session)
        if user:
            if user in self._queues:
                self._queues[user].put_nowait(item)
            else:
                self.foreign += 1  # a signed event for a leg another run (or a person) started
        elif session and verified.type.startswith("dialout."):
            self._orphans[session].append(item)
        else:
            self.room_events.put_nowait(item)


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
