"""Prefect tasks for Daily rooms: create, get, update, delete, list."""

from __future__ import annotations

import functools
from typing import Any

from ._shared import client_for
from ._sync import daily_task, sync_twin
from .client import MAX_PAGE_SIZE
from .credentials import DailyCredentials
from .models import DeletedRoom, Room, RoomProperties
from .ratelimit import DEFAULT, ROOM_DELETE
from .retries import paced_call


@daily_task("daily-create-room")
async def acreate_room(
    name: str | None = None,
    properties: RoomProperties | dict[str, Any] | None = None,
    privacy: str | None = None,
    credentials: DailyCredentials | None = None,
) -> Room:
    """Create a room (``POST /rooms``); Daily picks a random name when none is given.

    Example:
        ```python
        from prefect import flow
        from daily_sip.tasks import DailyCredentials
        from daily_sip.tasks.rooms import acreate_room

        @flow
        async def make_room():
            creds = await DailyCredentials.load("daily")
            room = await acreate_room(properties={"enable_dialout": True}, credentials=creds)
            return room.url
        ```
    """
    return await paced_call(
        DEFAULT,
        lambda: client_for(credentials).create_room(name, privacy=privacy, properties=properties),
    )


@daily_task("daily-get-room")
async def aget_room(name: str, credentials: DailyCredentials | None = None) -> Room:
    """Read a room and its ``config`` (``GET /rooms/:name``), incl. ``config.sip_uri`` when SIP is on.

    Example:
        ```python
        room = await aget_room("standup", credentials=creds)
        print(room.config.sip_uri.endpoint if room.sip_enabled else "SIP off")
        ```
    """
    return await paced_call(DEFAULT, lambda: client_for(credentials).get_room(name))


@daily_task("daily-update-room")
async def aupdate_room(
    name: str,
    properties: RoomProperties | dict[str, Any] | None = None,
    privacy: str | None = None,
    credentials: DailyCredentials | None = None,
) -> Room:
    """Change a room's privacy and/or properties (``POST /rooms/:name``).

    Example:
        ```python
        await aupdate_room("standup", {"enable_dialout": True,
                                      "dialout_config": {"allow_room_start": True}},
                          credentials=creds)
        ```
    """
    return await paced_call(
        DEFAULT,
        lambda: client_for(credentials).update_room(name, properties=properties, privacy=privacy),
    )


@daily_task("daily-delete-room")
async def adelete_room(name: str, credentials: DailyCredentials | None = None) -> DeletedRoom:
    """Delete a room (``DELETE /rooms/:name``); everyone in it is disconnected.

    A room that is already gone is not an error (``already_gone`` is True).
    Paced at Daily's slower delete class (~2/s).

    Example:
        ```python
        result = await adelete_room("campaign-2026-11-24", credentials=creds)
        assert result.deleted
        ```
    """
    return await paced_call(ROOM_DELETE, lambda: client_for(credentials).delete_room(name))


@daily_task("daily-list-rooms")
async def alist_rooms(
    page_size: int = 100, max_rooms: int | None = None, credentials: DailyCredentials | None = None
) -> list[Room]:
    """Every room of the domain, newest first, following Daily's pagination cursors.

    Each page is one paced request; ``max_rooms`` stops early.

    Example:
        ```python
        rooms = await alist_rooms(credentials=creds)
        sip_rooms = [r.name for r in rooms if r.sip_enabled]
        ```
    """
    client = client_for(credentials)
    page_size = min(page_size, MAX_PAGE_SIZE)  # else a full page of 100 looks like the last one
    rooms: list[Room] = []
    cursor: str | None = None
    while max_rooms is None or len(rooms) < max_rooms:
        page = await paced_call(
            DEFAULT, functools.partial(client.list_rooms, limit=page_size, starting_after=cursor)
        )
        rooms.extend(page.data)
        if len(page.data) < page_size:
            break
        cursor = page.data[-1].id
    return rooms if max_rooms is None else rooms[:max_rooms]


create_room = sync_twin(acreate_room)
get_room = sync_twin(aget_room)
update_room = sync_twin(aupdate_room)
delete_room = sync_twin(adelete_room)
list_rooms = sync_twin(alist_rooms)
