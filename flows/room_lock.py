"""One campaign at a time per Daily room, across every process that runs campaigns.

Two campaigns borrowing the same room would undo each other's SIP settings and share its
session limit. A campaign that names a room therefore holds the slot of a Prefect global
concurrency limit ``daily-room-<room>`` (limit 1) from before it touches the room until its
cleanup is done. Prefect leases the slot and renews the lease while the run lives, so a run
killed outright frees the room when its lease runs out (5 minutes) instead of never.
Rooms a campaign creates itself are unique to the run and need no lock.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from logging import Logger

ROOM_LIMIT_PREFIX = "daily-room-"
# How long a campaign waits quietly before saying the room is busy.
QUIET_WAIT_SECONDS = 2.0


def room_limit_name(room: str) -> str:
    """The global concurrency limit (limit 1) that serialises campaigns into one Daily room."""
    return f"{ROOM_LIMIT_PREFIX}{room}"


async def ensure_room_limit(room: str) -> str:
    """Create the room's limit (1 slot) if missing; returns its name. Idempotent."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectAlreadyExists

    name = room_limit_name(room)
    async with get_client() as client:
        try:
            await client.upsert_global_concurrency_limit_by_name(name, limit=1)
        except ObjectAlreadyExists:
            pass  # two campaigns created it at the same moment: it exists, with limit 1
    return name


class RoomBusyError(TimeoutError):
    """Another campaign held the room for longer than this one was willing to wait."""


@contextlib.asynccontextmanager
async def room_lock(room: str, wait_seconds: float, logger: Logger) -> AsyncIterator[None]:
    """Hold the room's slot for the body; wait up to ``wait_seconds`` for it."""
    from prefect.concurrency.asyncio import concurrency

    name = await ensure_room_limit(room)
    started = time.monotonic()
    held = contextlib.AsyncExitStack()
    try:
        await held.enter_async_context(
            concurrency(name, occupy=1, timeout_seconds=QUIET_WAIT_SECONDS, strict=True))
    except TimeoutError:
        logger.warning("room %s is in use by another campaign; waiting up to %.0f s for it",
                       room, wait_seconds)
        remaining = max(1.0, wait_seconds - (time.monotonic() - started))
        try:
            await held.enter_async_context(
                concurrency(name, occupy=1, timeout_seconds=remaining, strict=True))
        except TimeoutError:
            raise RoomBusyError(
                f"room {room} stayed in use by another campaign for {wait_seconds:.0f} s (global "
                f"concurrency limit {name}); try later or pick another room"
            ) from None
    async with held:
        yield
