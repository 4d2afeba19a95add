"""Presence: who is in which room right now, read from the room state.

Daily has two shapes: `GET /rooms/:name/presence` with `total_count`, `data` and filters
(https://docs.daily.co/reference/rest-api/rooms/get-room-presence) and `GET /presence`, a map of
room name to rows (https://docs.daily.co/reference/rest-api/presence). Presence here is immediate,
where Daily may lag by up to 15 s.
"""

from __future__ import annotations

from typing import Any

from .clock import iso
from .errors import invalid
from .rooms import Participant, Room, RoomService


def _presence_rows(room: Room) -> list[Participant]:
    return sorted(room.participants.values(), key=lambda p: p.joined_at)


def room_presence(
    rooms: RoomService,
    room_name: str,
    limit: Any = None,
    user_id: str | None = None,
    user_name: str | None = None,
) -> dict[str, Any]:
    """REST GET /rooms/:name/presence (camelCase fields)."""
    room = rooms.get_room(room_name)
    rows = _presence_rows(room)
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
        if not room.participants or rooms.expired(room):
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
            for p in _presence_rows(room)
        ]
    return out
