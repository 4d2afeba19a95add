"""Prefect tasks that read who is in a room, dial-out legs included."""

from __future__ import annotations

from ._shared import client_for
from ._sync import daily_task, sync_twin
from .credentials import DailyCredentials
from .models import Participant, RoomPresence
from .ratelimit import DEFAULT
from .retries import paced_call


@daily_task("daily-get-room-presence")
async def aget_room_presence(
    room: str, user_id: str | None = None, credentials: DailyCredentials | None = None
) -> RoomPresence:
    """Participants of one room now (``GET /rooms/:name/presence``), optionally one ``userId``.

    Example:
        ```python
        presence = await aget_room_presence("standup", credentials=creds)
        print(presence.total_count)
        ```
    """
    return await paced_call(DEFAULT, lambda: client_for(credentials).get_room_presence(room, user_id=user_id))


@daily_task("daily-get-presence")
async def aget_presence(credentials: DailyCredentials | None = None) -> dict[str, list[Participant]]:
    """Every room with someone in it (``GET /presence``), keyed by room name.

    Example:
        ```python
        busy_rooms = sorted(await aget_presence(credentials=creds))
        ```
    """
    return await paced_call(DEFAULT, lambda: client_for(credentials).get_presence())


get_room_presence = sync_twin(aget_room_presence)
get_presence = sync_twin(aget_presence)
