"""Rooms: their configuration, SIP dial-in endpoints, expiry, and the meetings held in them.

A room is created, updated, listed and deleted like Daily's
(https://docs.daily.co/reference/rest-api/rooms): names from `[A-Za-z0-9_-]`, the room object's
`config` holding only what was set plus the read-only `sip_uri`
(https://docs.daily.co/reference/rest-api/rooms/config), newest-first listing with cursors
(https://docs.daily.co/reference/rest-api/rooms/list-rooms). A meeting (session) runs while anyone
is in the room; it emits `meeting.started`/`meeting.ended` and one `dialin.ready` per SIP endpoint
(https://docs.daily.co/reference/rest-api/webhooks/events/meeting-started,
https://docs.daily.co/guides/products/dial-in-dial-out/sip). Call legs live in dialout.py; a room
only asks it to end them.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from daily_sip.tasks.events import DailyType

from .clock import Clock, Scheduler, TimerHandle, iso
from .config import EmulatorConfig
from .errors import invalid, not_found
from .events import EventLog
from .validation import (
    ROOM_NAME_RE,
    check_keys,
    check_object,
    check_privacy,
    check_str,
    validate_properties,
)

if TYPE_CHECKING:
    from .dialout import Leg


@dataclass
class Session:
    """A live meeting in a room."""

    meeting_id: str
    start_ts: float


@dataclass
class Participant:
    """Anyone in a room: a dial-out leg, a dial-in caller or a simulated web user."""

    id: str
    room: str
    kind: str  # "dialout" | "dialin" | "web"
    user_id: str | None
    user_name: str | None
    joined_at: float
    mtg_session_id: str | None = None


@dataclass
class Room:
    """A Daily room with only the properties that were set."""

    id: str
    name: str
    seq: int
    created_at: float
    privacy: str = "public"
    properties: dict[str, Any] = field(default_factory=dict)
    sip_endpoints: list[str] = field(default_factory=list)
    session: Session | None = None
    participants: dict[str, Participant] = field(default_factory=dict)
    # Who left, and when: presence keeps showing them for `--presence-lag` seconds.
    departed: list[tuple[Participant, float]] = field(default_factory=list)
    exp_timer: TimerHandle | None = field(default=None, repr=False)

    @property
    def sip(self) -> dict[str, Any] | None:
        return self.properties.get("sip")

    def sip_legs(self) -> list[Leg]:
        """Active SIP/PSTN legs: what `max_sip_pstn_sessions_per_room` counts."""
        from .dialout import Leg  # dialout.py imports this module, so Leg is looked up late

        return [p for p in self.participants.values() if isinstance(p, Leg) and p.active]


class RoomService:
    """Every room of the domain, the meetings in them and the simulated web participants.

    Methods mirror the room endpoints and raise `ApiError` like Daily would. Ending a call leg
    is delegated to `end_leg` (the dial-out area), which calls back `leave` when it is done.
    """

    def __init__(
        self,
        config: EmulatorConfig,
        clock: Clock,
        scheduler: Scheduler,
        event_log: EventLog,
        domain_id: str,
        end_leg: Callable[[Leg, str], None],
    ) -> None:
        self.config = config
        self.clock = clock
        self.scheduler = scheduler
        self.event_log = event_log
        self.domain_id = domain_id
        self.end_leg = end_leg
        # Told after every join and leave (the dial-out area applies `max_idle_timeout_sec`).
        self.on_members_changed: Callable[[Room], None] | None = None
        self._clear()

    def _clear(self) -> None:
        self.rooms: dict[str, Room] = {}
        self.web_participants: dict[str, Participant] = {}
        self._room_seq_by_id: dict[str, int] = {}
        self._seq = itertools.count(1)

    def reset(self) -> None:
        """Forget every room without emitting events."""
        for room in self.rooms.values():
            if room.exp_timer:
                room.exp_timer.cancel()
        self._clear()

    def expired(self, room: Room) -> bool:
        exp = room.properties.get("exp")
        return exp is not None and exp <= self.clock.now()

    def get_room(self, name: str) -> Room:
        room = self.rooms.get(name)
        if room is None or self.expired(room):
            raise not_found(f"room {name} was not found")
        return room

    def room_json(self, room: Room) -> dict[str, Any]:
        config = dict(room.properties)
        if room.sip is not None and room.sip_endpoints:
            sip_uri: dict[str, Any] = {"endpoint": room.sip_endpoints[0]}
            if len(room.sip_endpoints) > 1:
                sip_uri["extra_endpoints"] = room.sip_endpoints[1:]
            config["sip_uri"] = sip_uri
        return {
            "id": room.id,
            "name": room.name,
            "api_created": True,
            "privacy": room.privacy,
            "url": f"https://{self.config.domain_name}.daily.co/{room.name}",
            "created_at": iso(room.created_at),
            "config": config,
        }

    def create_room(self, body: Any) -> Room:
        body = check_object("body", body or {})
        check_keys("", body, {"name", "privacy", "properties"})
        name = body.get("name")
        if name is None:
            name = "".join(
                random.choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=20)
            )
        check_str("name", name)
        if not ROOM_NAME_RE.match(name):
            raise invalid(f"room name {name!r} is invalid: use 1-128 characters from A-Z a-z 0-9 - _")
        existing = self.rooms.get(name)
        if existing is not None and not self.expired(existing):
            raise invalid(f"a room named {name} already exists")
        privacy = body.get("privacy", "public")
        check_privacy("privacy", privacy)
        props = validate_properties(body.get("properties") or {})
        if existing is not None:
            self._remove_room(existing, reason="room-expired")
        now = self.clock.now()
        room = Room(
            id=str(uuid.uuid4()),
            name=name,
            seq=next(self._seq),
            created_at=now,
            privacy=privacy,
        )
        self._room_seq_by_id[room.id] = room.seq
        self.rooms[name] = room
        self._apply_properties(room, props)
        return room

    def update_room(self, name: str, body: Any) -> Room:
        room = self.get_room(name)
        body = check_object("body", body or {})
        check_keys("", body, {"privacy", "properties"})
        if "privacy" in body:
            check_privacy("privacy", body["privacy"])
        props = validate_properties(body.get("properties") or {})
        if "privacy" in body:
            room.privacy = body["privacy"]
        self._apply_properties(room, props)
        return room

    def _apply_properties(self, room: Room, props: dict[str, Any]) -> None:
        sip_before = room.sip
        for key, value in props.items():
            if value is None:
                room.properties.pop(key, None)
            else:
                room.properties[key] = value
        if "sip" in props:
            self._sync_sip(room, sip_before)
        if "exp" in props or "eject_at_room_exp" in props:
            self._schedule_eject(room)

    def _endpoint_host(self, sip: dict[str, Any]) -> str:
        """Host of the dial-in endpoints for `sip.provider`: `daily` gives
        `<domain>.sip-us.daily.co`, unset (or `signalwire`) SignalWire's host
        (https://docs.daily.co/docs/guides/features/dial-in-dial-out)."""
        domain = self.config.domain_name
        if sip.get("provider") == "daily":
            return f"{domain}.sip-us.daily.co"
        return f"daily-{domain}-app.dapp.signalwire.com"

    def _new_endpoint(self, room: Room, sip: dict[str, Any], index: int) -> str:
        if sip.get("force_digit_only_username"):
            user = "".join(random.choices("0123456789", k=10))
        else:
            user = f"{room.name}.{index}"
        return f"sip:{user}@{self._endpoint_host(sip)}"

    def _sync_sip(self, room: Room, before: dict[str, Any] | None) -> None:
        """Recompute endpoints after `sip` changed; hang up callers on vanished ones."""
        after = room.sip
        old = list(room.sip_endpoints)
        if after is None:
            room.sip_endpoints = []
        else:
            same_shape = before is not None and all(
                before.get(k) == after.get(k) for k in ("provider", "force_digit_only_username")
            )
            keep = old if same_shape else []
            count = after.get("num_endpoints", 1)
            endpoints = keep[:count]
            while len(endpoints) < count:
                endpoints.append(self._new_endpoint(room, after, len(endpoints)))
            room.sip_endpoints = endpoints
        for leg in list(room.sip_legs()):
            if leg.kind == "dialin" and leg.endpoint not in room.sip_endpoints:
                self.end_leg(leg, "sip-disabled" if after is None else "endpoint-removed")
        if room.session is not None:
            for endpoint in room.sip_endpoints:
                if endpoint not in old:
                    self._emit_dialin_ready(room, endpoint)

    def _schedule_eject(self, room: Room) -> None:
        if room.exp_timer:
            room.exp_timer.cancel()
            room.exp_timer = None
        exp = room.properties.get("exp")
        if exp is None or not room.properties.get("eject_at_room_exp"):
            return

        def eject() -> None:
            if self.rooms.get(room.name) is room and room.properties.get("exp") == exp:
                self._kick_everyone(room, "room-expired")

        room.exp_timer = self.scheduler.call_later(exp - self.clock.now(), eject)

    def delete_room(self, name: str) -> dict[str, Any]:
        room = self.rooms.get(name)
        if room is None:
            raise not_found(f"room {name} was not found")
        if self.expired(room):
            self._remove_room(room, reason="room-deleted")
            raise not_found(f"room {name} was not found", deleted=True)
        self._remove_room(room, reason="room-deleted")
        return {"deleted": True, "name": name}

    def _remove_room(self, room: Room, reason: str) -> None:
        self._kick_everyone(room, reason)
        if room.exp_timer:
            room.exp_timer.cancel()
        self.rooms.pop(room.name, None)

    def _kick_everyone(self, room: Room, reason: str) -> None:
        from .dialout import Leg  # dialout.py imports this module, so Leg is looked up late

        for participant in list(room.participants.values()):
            if isinstance(participant, Leg):
                self.end_leg(participant, reason)
            else:
                self.leave(room, participant)

    def list_rooms(
        self,
        limit: Any = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> dict[str, Any]:
        """Newest first, Stripe-style cursors (see README for `ending_before`)."""
        if limit is None or limit == "":
            limit_n = 100
        else:
            try:
                limit_n = int(limit)
            except (TypeError, ValueError):
                raise invalid(f"'limit' must be an integer, got {limit!r}") from None
            if limit_n < 1:
                raise invalid(f"'limit' must be between 1 and 100, got {limit_n}")
            limit_n = min(limit_n, 100)
        if starting_after and ending_before:
            raise invalid("use only one of 'starting_after' and 'ending_before'")
        visible = sorted(
            (r for r in self.rooms.values() if not self.expired(r)),
            key=lambda r: r.seq,
            reverse=True,
        )
        if starting_after:
            cursor = self._cursor("starting_after", starting_after)
            page = [r for r in visible if r.seq < cursor][:limit_n]
        elif ending_before:
            cursor = 0 if ending_before == "OLDEST" else self._cursor("ending_before", ending_before)
            newer = [r for r in visible if r.seq > cursor]
            page = newer[-limit_n:]
        else:
            page = visible[:limit_n]
        return {"total_count": len(visible), "data": [self.room_json(r) for r in page]}

    def _cursor(self, param: str, room_id: str) -> int:
        seq = self._room_seq_by_id.get(room_id)
        if seq is None:
            raise invalid(f"'{param}' must be the id of a room, got {room_id!r}")
        return seq

    # -- meetings and who is in them ------------------------------------------

    def join(self, room: Room, participant: Participant) -> None:
        if room.session is None:
            room.session = Session(meeting_id=str(uuid.uuid4()), start_ts=self.clock.now())
            self.event_log.emit(
                DailyType.MEETING_STARTED,
                {
                    "start_ts": int(room.session.start_ts),
                    "meeting_id": room.session.meeting_id,
                    "room": room.name,
                },
            )
            for endpoint in room.sip_endpoints:
                self._emit_dialin_ready(room, endpoint)
        participant.mtg_session_id = room.session.meeting_id
        room.participants[participant.id] = participant
        if self.config.participant_events:
            self.event_log.emit(DailyType.PARTICIPANT_JOINED, self._participant_payload(room, participant))
        if self.on_members_changed is not None:
            self.on_members_changed(room)

    def leave(self, room: Room, participant: Participant) -> None:
        if room.participants.pop(participant.id, None) is not None:
            now = self.clock.now()
            payload = self._participant_payload(room, participant)
            payload["duration"] = round(now - participant.joined_at, 3)  # a number of seconds
            if self.config.participant_events:
                self.event_log.emit(DailyType.PARTICIPANT_LEFT, payload)
            if self.config.presence_lag > 0:
                room.departed = [(p, t) for p, t in room.departed if t > now - self.config.presence_lag]
                room.departed.append((participant, now))
            if self.on_members_changed is not None:
                self.on_members_changed(room)
        self.web_participants.pop(participant.id, None)
        if not room.participants and room.session is not None:
            session, room.session = room.session, None
            self.event_log.emit(
                DailyType.MEETING_ENDED,
                {
                    "start_ts": int(session.start_ts),
                    "end_ts": int(self.clock.now()),
                    "meeting_id": session.meeting_id,
                    "room": room.name,
                },
            )

    @staticmethod
    def _participant_payload(room: Room, p: Participant) -> dict[str, Any]:
        """`participant.joined` / `.left` payload
        (https://docs.daily.co/reference/rest-api/webhooks/events/participant-joined,
        https://docs.daily.co/reference/rest-api/webhooks/events/participant-left); dial-out
        and dial-in legs are participants too (an inference: Daily does not say). `will_eject_at`
        is the room's `exp` when `eject_at_room_exp` is set, else null."""
        eject = room.properties.get("exp") if room.properties.get("eject_at_room_exp") else None
        return {
            "room": room.name,
            "session_id": p.id,
            "user_id": p.user_id,
            "user_name": p.user_name,
            "joined_at": p.joined_at,
            "will_eject_at": eject,
            "owner": False,
            "permissions": {
                "hasPresence": True,
                "canSend": True,
                "canReceive": {"base": True},
                "canAdmin": False,
            },
        }

    def _emit_dialin_ready(self, room: Room, endpoint: str) -> None:
        self.event_log.emit(
            DailyType.DIALIN_READY,
            {
                "timestamp": self.event_log.timestamp(),
                "domain_id": self.domain_id,
                "room": room.name,
                "sip_endpoint": endpoint,
            },
        )

    # -- simulated browser participants (the /_emulator routes) --------------

    def join_web(self, room_name: str, body: Any) -> Participant:
        """A browser participant joins (starts the meeting if it is the first)."""
        room = self.get_room(room_name)
        body = check_object("body", body or {})
        check_keys("", body, {"user_name", "user_id"})
        for key in ("user_name", "user_id"):
            if body.get(key) is not None:
                check_str(key, body[key])
        p = Participant(
            id=str(uuid.uuid4()),
            room=room.name,
            kind="web",
            user_id=body.get("user_id"),
            user_name=body.get("user_name") or "guest",
            joined_at=self.clock.now(),
        )
        self.web_participants[p.id] = p
        self.join(room, p)
        return p

    def leave_web(self, participant_id: str) -> None:
        p = self.web_participants.get(participant_id)
        if p is None:
            raise not_found(f"participant {participant_id} not found")
        room = self.rooms.get(p.room)
        if room is not None:
            self.leave(room, p)
        self.web_participants.pop(participant_id, None)
