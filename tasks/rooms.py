"""Prefect tasks for Daily rooms: create, get, update, delete, list."""

from __future__ import annotations

from typing import Any

from prefect import task

from ._shared import client_for
from .client import MAX_PAGE_SIZE
from .credentials import DailyCredentials
from .models import DeletedRoom, Room, RoomProperties
from .ratelimit import DEFAULT, ROOM_DELETE
from .retries import RETRY_POLICY, paced_call


@task(name="daily-create-room", **RETRY_POLICY)
async def create_room(
    name: str | None = None,
    properties: RoomProperties | dict[str, Any] | None = None,
    privacy: str | None = None,
    credentials: DailyCredentials | None = None,
) -> Room:
    """Create a room (``POST /rooms``); Daily picks a random name when none is given.

    Example:
        ```python
        from prefect import flow
        from tasks import DailyCredentials
        from tasks.rooms import create_room

        @flow
        async def make_room():
            creds = await DailyCredentials.load("daily")
            room = await create_room(properties={"enable_dialout": True}, credentials=creds)
            return room.url
        ```
    """
    return await paced_call(
        DEFAULT,
        lambda: client_for(credentials).create_room(name, privacy=privacy, properties=properties),
    )


@task(name="daily-get-room", **RETRY_POLICY)
async def get_room(name: str, credentials: DailyCredentials | None = None) -> Room:
    """Read a room and its ``config`` (``GET /rooms/:name``), incl. ``config.sip_uri`` when SIP is on.

    Example:
        ```python
        room = await get_room("standup", credentials=creds)
        print(room.config.sip_uri.endpoint if room.sip_enabled else "SIP off")
        ```
    """
    return await paced_call(DEFAULT, lambda: client_for(credentials).get_room(name))


@task(name="daily-update-room", **RETRY_POLICY)
async def update_room(
    name: str,
    properties: RoomProperties | dict[str, Any] | None = None,
    privacy: str | None = None,
    credentials: DailyCredentials | None = None,
) -> Room:
    """Change a room's privacy and/or properties (``POST /rooms/:name``).

    Example:
        ```python
        await update_room("standup", {"enable_dialout": True,
                                      "dialout_config": {"allow_room_start": True}},
                          credentials=creds)
        ```
    """
    return await paced_call(
        DEFAULT,
        lambda: client_for(credentials).update_room(name, properties=properties, privacy=privacy),
    )


@task(name="daily-delete-room", **RETRY_POLICY)
async def delete_room(name: str, credentials: DailyCredentials | None = None) -> DeletedRoom:
    """Delete a room (``DELETE /rooms/:name``); everyone in it is disconnected.

    A room that is already gone is not an error (``already_gone`` is True).
    Paced at Daily's slower delete class (~2/s).

    Example:
        ```python
        result = await delete_room("campaign-2026-11-24", credentials=creds)
        assert result.deleted
        ```
    """
    return await paced_call(ROOM_DELETE, lambda: client_for(credentials).delete_room(name))


@task(name="daily-list-rooms", **RETRY_POLICY)
async def list_rooms(
    page_size: int = 100, max_rooms: int | None = None, credentials: DailyCredentials | None = None
) -> list[Room]:
    """Every room of the domain, newest first, following Daily's pagination cursors.

    Each page is one paced request; ``max_rooms`` stops early.

    Example:
        ```python
        rooms = await list_rooms(credentials=creds)
        sip_rooms = [r.name for r in rooms if r.sip_enabled]
        ```
    """
    client = client_for(credentials)
    page_size = min(page_size, MAX_PAGE_SIZE)  # else a full page of 100 looks like the last one
    rooms: list[Room] = []
    cursor: str | None = None
    while max_rooms is None or len(rooms) < max_rooms:
        page = await paced_call(
            DEFAULT, lambda c=cursor: client.list_rooms(limit=page_size, starting_after=c)
        )
        rooms.extend(page.data)
        if len(page.data) < page_size:
            break
        cursor = page.data[-1].id
    return rooms if max_rooms is None else rooms[:max_rooms]
