"""Prefect tasks that read who is in a room, dial-out legs included."""

from __future__ import annotations

from prefect import task

from ._shared import client_for
from .credentials import DailyCredentials
from .models import Participant, RoomPresence
from .ratelimit import DEFAULT
from .retries import RETRY_POLICY, paced_call


@task(name="daily-get-room-presence", **RETRY_POLICY)
async def get_room_presence(
    room: str, user_id: str | None = None, credentials: DailyCredentials | None = None
) -> RoomPresence:
    """Participants of one room now (``GET /rooms/:name/presence``), optionally one ``userId``.

    Example:
        ```python
        presence = await get_room_presence("standup", credentials=creds)
        print(presence.total_count)
        ```
    """
    return await paced_call(
        DEFAULT, lambda: client_for(credentials).get_room_presence(room, user_id=user_id)
    )


@task(name="daily-get-presence", **RETRY_POLICY)
async def get_presence(credentials: DailyCredentials | None = None) -> dict[str, list[Participant]]:
    """Every room with someone in it (``GET /presence``), keyed by room name.

    Example:
        ```python
        busy_rooms = sorted(await get_presence(credentials=creds))
        ```
    """
    return await paced_call(DEFAULT, lambda: client_for(credentials).get_presence())
