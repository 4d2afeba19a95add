"""Presence: who is in which room right now, read from the room state.

Daily has two shapes: `GET /rooms/:name/presence` with `total_count`, `data` and filters
(https://docs.daily.co/reference/rest-api/rooms/get-room-presence) and `GET /presence`, a map of
room name to rows (https://docs.daily.co/reference/rest-api/presence). Daily's presence is
"near-real-time" and asks for polls at most every 15 s (a third party observed 10-25 s), so a join
or a leave shows here `--presence-lag` seconds late, 15 by default. Whether Daily lists a dial-out
that is still ringing is not documented: by default it does here (`--presence-ringing`, the case
in which presence cannot tell ringing from answered); `--no-presence-ringing` lists a dial-out
only from its answer.
"""

from __future__ import annotations

from typing import Any

from .clock import iso
from .errors import invalid
from .rooms import Participant, Room, RoomService


def _listed_from(p: Participant, ringing: bool) -> float | None:
    """When presence starts to list `p`: its join, or for a dial-out without `--presence-ringing`
    its answer (None: never answered, never listed)."""
    if ringing or p.kind != "dialout":
        return p.joined_at
    return getattr(p, "answered_at", None)


def _presence_rows(room: Room, now: float, lag: float, ringing: bool = True) -> list[Participant]:
    """Who presence shows: with `--presence-lag`, a join shows up `lag` seconds late and a
    leave is seen `lag` seconds late too (Daily: near-real-time, observed 10-25 s)."""
    seen_by = now - lag

    def listed(p: Participant) -> bool:
        since = _listed_from(p, ringing)
        return since is not None and since <= seen_by

    rows = [p for p in room.participants.values() if listed(p)]
    rows += [p for p, left in room.departed if left > seen_by and listed(p)]
    return sorted(rows, key=lambda p: p.joined_at)


def room_presence(
    rooms: RoomService,
    room_name: str,
    limit: Any = None,
    user_id: str | None = None,
    user_name: str | None = None,
) -> dict[str, Any]:
    """REST GET /rooms/:name/presence (camelCase fields)."""
    room = rooms.get_room(room_name)
    rows = _presence_rows(room, rooms.clock.now(), rooms.config.presence_lag, rooms.config.presence_ringing)
    if user_id is not None:
        rows = [p for p in rows if p.user_id == user_id]
    if user_name is not None:
        rows = [p for p in rows if p.user_name == user_name]
    total = len(rows)
    if limit not in (None, ""):
        try:
            n = int(limit)
        except (TypeError, ValueError):
            raise invalid(f"'limit' must be an integer, got {limit!r}") from None
        if n < 1:
            raise invalid("'limit' must be >= 1")
        rows = rows[:n]
    now = rooms.clock.now()
    data = [
        {
            "id": p.id,
            "room": room.name,
            "userId": p.user_id,
            "userName": p.user_name,
            "mtgSessionId": p.mtg_session_id,
            "joinTime": iso(p.joined_at),
            "duration": int(now - p.joined_at),
        }
        for p in rows
    ]
    return {"total_count": total, "data": data}


def all_presence(rooms: RoomService) -> dict[str, list[dict[str, Any]]]:
    """REST GET /presence: rooms with someone in them, snake_case fields."""
    now = rooms.clock.now()
    out: dict[str, list[dict[str, Any]]] = {}
    for room in rooms.rooms.values():
        rows = _presence_rows(room, now, rooms.config.presence_lag, rooms.config.presence_ringing)
        if not rows or rooms.expired(room):
            continue
        out[room.name] = [
            {
                "room": room.name,
                "id": p.id,
                "user_id": p.user_id,
                "user_name": p.user_name,
                "mtg_session_id": p.mtg_session_id,
                "join_time": iso(p.joined_at),
                "duration": int(now - p.joined_at),
            }
            for p in rows
        ]
    return out
