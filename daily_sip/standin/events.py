"""Events as Daily would push them to a webhook, and the log every emitted event goes into.

Each event is recorded (for `GET /_emulator/events`) and handed to every listener at once; the
webhook `Dispatcher` in delivery.py is the listener that turns them into deliveries. The envelope
and payload shapes are Daily's (https://docs.daily.co/reference/rest-api/webhooks, e.g.
https://docs.daily.co/reference/rest-api/webhooks/events/dialout-connected).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .clock import Clock, iso

if TYPE_CHECKING:
    from .dialout import Leg


@dataclass
class Event:
    """One event as Daily would push it (the webhook envelope minus `event_ts`)."""

    id: str
    type: str
    payload: dict[str, Any]
    created_at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "payload": self.payload,
            "created_at": iso(self.created_at),
        }


class EventLog:
    """Every event emitted so far, in order, and the listeners told about each new one."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.listeners: list[Callable[[Event], None]] = []
        self.clear()

    def clear(self) -> None:
        """Forget the events (listeners stay subscribed)."""
        self.events: list[Event] = []
        self._seq = itertools.count(1)

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        self.listeners.append(listener)

    def emit(self, type_: str, payload: dict[str, Any], leg: Leg | None = None) -> Event:
        """Record an event (also on `leg`, whose event history it belongs to) and publish it."""
        n = next(self._seq)
        event = Event(
            id=f"{n}-{type_.replace('.', '-')}-{uuid.uuid4()}",
            type=type_,
            payload=payload,
            created_at=self.clock.now(),
        )
        self.events.append(event)
        if leg is not None:
            leg.events.append(type_)
        for listener in self.listeners:
            listener(event)
        return event

    def timestamp(self) -> str:
        # Daily's examples send `timestamp` as a string of unix seconds.
        return str(int(self.clock.now()))
