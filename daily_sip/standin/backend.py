"""The imitated Daily domain as one object: the facade the HTTP layer (responses.py) calls.

State lives per area, moto-style: rooms and meetings (rooms.py), call legs (dialout.py,
dialin.py), presence (presence.py), the webhook registration (webhooks.py) and the event log
(events.py). `Backend` builds the areas, wires them together and exposes one method per REST
endpoint of Daily's API (https://docs.daily.co/reference/rest-api), raising `ApiError` as Daily
would. No HTTP in sight: tests drive it directly with a `FakeClock` and a `ManualScheduler`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from . import dialin, presence
from .clock import AsyncioScheduler, Clock, Scheduler, SystemClock, iso
from .config import EmulatorConfig
from .dialout import CallService, Leg
from .events import Event, EventLog
from .rooms import Participant, Room, RoomService
from .webhooks import WebhookRegistry


class Backend:
    """The whole imitated Daily domain: rooms, calls, presence and webhook registry.

    Public methods mirror REST endpoints and raise `ApiError` like Daily would.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        clock: Clock | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.config = config or EmulatorConfig()
        self.clock = clock or SystemClock()
        self.scheduler = scheduler or AsyncioScheduler()
        self.domain_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{self.config.domain_name}.daily.co"))
        self.webhooks = WebhookRegistry(self.clock)
        self.event_log = EventLog(self.clock)
        self.room_service = RoomService(
            self.config,
            self.clock,
            self.scheduler,
            self.event_log,
            self.domain_id,
            # A deleted or expired room ends its legs, which live in the call area built below.
            end_leg=lambda leg, reason: self.call_service.end_leg(leg, reason),
        )
        self.call_service = CallService(
            self.config, self.clock, self.scheduler, self.event_log, self.room_service, self.domain_id
        )

    # -- state, as the HTTP layer and introspection read it -----------------------

    @property
    def rooms(self) -> dict[str, Room]:
        return self.room_service.rooms

    @property
    def legs(self) -> dict[str, Leg]:
        return self.call_service.legs

    @property
    def web_participants(self) -> dict[str, Participant]:
        return self.room_service.web_participants

    @property
    def events(self) -> list[Event]:
        return self.event_log.events

    # -- plumbing -------------------------------------------------------------

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        """Call `listener(event)` for every event emitted from now on."""
        self.event_log.subscribe(listener)

    def reset(self) -> None:
        """Forget everything (rooms, calls, webhooks, events) without emitting events."""
        self.call_service.reset()
        self.room_service.reset()
        self.webhooks.hooks.clear()
        self.event_log.clear()

    # -- rooms ----------------------------------------------------------------

    def domain_config(self) -> dict[str, Any]:
        """``GET /``: the domain's name, id and top-level configuration
        (https://docs.daily.co/reference/rest-api/your-domain/get-domain-config); the stand-in's
        domain has every optional setting at Daily's default, so ``config`` is empty."""
        return {"domain_name": self.config.domain_name, "domain_id": self.domain_id, "config": {}}

    def get_room(self, name: str) -> Room:
        return self.room_service.get_room(name)

    def room_json(self, room: Room) -> dict[str, Any]:
        return self.room_service.room_json(room)

    def create_room(self, body: Any) -> Room:
        return self.room_service.create_room(body)

    def update_room(self, name: str, body: Any) -> Room:
        return self.room_service.update_room(name, body)

    def delete_room(self, name: str) -> dict[str, Any]:
        return self.room_service.delete_room(name)

    def list_rooms(
        self,
        limit: Any = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> dict[str, Any]:
        """Newest first, Stripe-style cursors (see README for `ending_before`)."""
        return self.room_service.list_rooms(limit, starting_after, ending_before)

    # -- calls ------------------------------------------------------------------

    def start_dialout(self, room_name: str, body: Any) -> Leg:
        """REST dialOut/start: validate, check the room, create a leg and script it."""
        return self.call_service.start_dialout(room_name, body)

    def stop_dialout(self, room_name: str, body: Any) -> dict[str, Any]:
        return self.call_service.stop_dialout(room_name, body)

    def send_dtmf(self, room_name: str, body: Any) -> dict[str, Any]:
        return self.call_service.send_dtmf(room_name, body)

    def sip_call_transfer(self, room_name: str, body: Any) -> dict[str, Any]:
        return self.call_service.sip_call_transfer(room_name, body)

    def sip_refer(self, room_name: str, body: Any) -> dict[str, Any]:
        return self.call_service.sip_refer(room_name, body)

    # -- presence ---------------------------------------------------------------

    def room_presence(
        self,
        room_name: str,
        limit: Any = None,
        user_id: str | None = None,
        user_name: str | None = None,
    ) -> dict[str, Any]:
        return presence.room_presence(self.room_service, room_name, limit, user_id, user_name)

    def all_presence(self) -> dict[str, list[dict[str, Any]]]:
        return presence.all_presence(self.room_service)

    # -- simulation hooks (the /_emulator routes) -------------------------------

    def simulate_dialin(self, room_name: str, body: Any) -> Leg:
        """A SIP client dials one of the room's endpoints."""
        return dialin.simulate_dialin(self.call_service, room_name, body)

    def hangup(self, leg_id: str) -> Leg:
        """The far end of a leg hangs up."""
        return self.call_service.hangup(leg_id)

    def join_web(self, room_name: str, body: Any) -> Participant:
        """A browser participant joins (starts the meeting if it is the first)."""
        return self.room_service.join_web(room_name, body)

    def leave_web(self, participant_id: str) -> None:
        self.room_service.leave_web(participant_id)

    # -- introspection ----------------------------------------------------------

    def room_summary(self, room: Room) -> dict[str, Any]:
        legs = room.sip_legs()
        return {
            "name": room.name,
            "id": room.id,
            "expired": self.room_service.expired(room),
            "sip_enabled": room.sip is not None,
            "sip_endpoints": list(room.sip_endpoints),
            "enable_dialout": room.properties.get("enable_dialout") is True,
            "allow_room_start": (room.properties.get("dialout_config") or {}).get("allow_room_start") is True,
            "session": None
            if room.session is None
            else {
                "meeting_id": room.session.meeting_id,
                "started_at": iso(room.session.start_ts),
            },
            "participants": len(room.participants),
            "legs_up": len(legs),
            "dialout_legs_up": sum(1 for leg in legs if leg.kind == "dialout"),
            "dialin_legs_up": sum(1 for leg in legs if leg.kind == "dialin"),
            "session_limit": self.config.session_limit,
            "room": self.room_json(room),
        }
