"""One campaign at a time per Daily room, across every process that runs campaigns.

Two campaigns borrowing the same room would undo each other's SIP settings and share its
session limit. A campaign that names a room therefore holds the room's lock from before it
touches the room until its cleanup is done. Rooms a campaign creates are unique to the run and
need no lock.

**The lock is a Prefect Variable with a short lease**, ``daily_room_lock_<room>_<hash>`` holding
``{room, holder, token, expires_at}``:

* *acquire* = create the variable. Variable names are unique in Prefect's database, so exactly
  one of several campaigns racing for a free room succeeds;
* the holder *renews* the lease every `RENEW_SECONDS` by updating the variable **by its id**;
* a lease not renewed for `LEASE_SECONDS` is *expired*: a waiter deletes **that** variable by its
  id and creates its own. Deleting by id is the compare-and-set: if another waiter already broke
  that lease and took the room, the old id is gone, the delete finds nothing, and the create fails
  on the new holder's name. A holder whose lease was broken (it stalled for a whole lease) finds
  its id gone at the next renewal and logs that it lost the room;
* *release* = delete by id.

Why not Prefect's global concurrency limit with leases (the previous design): on Prefect OSS the
leases live in the server's memory while the slot count lives in the database, so a server
restart forgets the lease but keeps the slot taken, and the room stays locked forever. Variables
live in the database: a restart changes nothing, and an expired lease is recognisable by anyone.

Bounds: a holder killed with ``kill -9`` (or a host that vanished) frees the room at most
`LEASE_SECONDS` (30 s) after its last renewal; the next campaign, polling every
`POLL_SECONDS`, starts within about 31 s. A live holder survives a Prefect outage shorter than
the lease. Expiry compares wall clocks of holder and waiter: keep hosts NTP-synced (skew well
under the lease).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import time
import uuid
from collections.abc import AsyncIterator
from logging import Logger, LoggerAdapter
from typing import Any

LOCK_PREFIX = "daily_room_lock_"
# A lease not renewed for this long is expired; the room is free for the next campaign.
LEASE_SECONDS = 30.0
# How often the holder renews: several renewals fit in one lease, so one or two failed renewals
# (a Prefect API blip) do not lose the room.
RENEW_SECONDS = 5.0
# How often a waiting campaign tries again.
POLL_SECONDS = 1.0
# How long a campaign waits quietly before saying the room is busy.
QUIET_WAIT_SECONDS = 2.0


def lock_variable(room: str) -> str:
    """The Prefect Variable that is the room's lock (lowercase, with a hash so case differences stay apart).

    Example:
        ```python
        lock_variable("Board-Room")  # 'daily_room_lock_board-room_5d0c1c0e6a'
        ```
    """
    slug = re.sub(r"[^a-z0-9_-]+", "_", room.lower())[:150]
    digest = hashlib.sha1(room.encode()).hexdigest()[:10]
    return f"{LOCK_PREFIX}{slug}_{digest}"


class RoomBusyError(TimeoutError):
    """Another campaign held the room for longer than this one was willing to wait."""


class RoomLock:
    """The lease on one room's lock variable; see the module docstring for the protocol.

    Example:
        ```python
        async with get_client() as client:
            lock = RoomLock("boardroom", holder="flow-run-id")
            if await lock.try_acquire(client):
                ...
                await lock.release(client)
        ```
    """

    def __init__(self, room: str, holder: str, lease_seconds: float = LEASE_SECONDS) -> None:
        self.room, self.holder, self.lease = room, holder, lease_seconds
        self.name = lock_variable(room)
        self.token = uuid.uuid4().hex
        self.variable_id: Any = None

    def _value(self) -> dict[str, Any]:
        return {
            "room": self.room,
            "holder": self.holder,
            "token": self.token,
            "expires_at": time.time() + self.lease,
        }

    async def _create(self, client: Any) -> bool:
        from prefect.client.schemas.actions import VariableCreate
        from prefect.exceptions import ObjectAlreadyExists

        try:
            var = await client.create_variable(
                VariableCreate(name=self.name, value=self._value(), tags=["daily-room-lock"])
            )
        except ObjectAlreadyExists:
            return False
        self.variable_id = var.id
        return True

    async def try_acquire(self, client: Any) -> bool:
        """One attempt: True when this campaign now holds the room."""
        if await self._create(client):
            return True
        current = await client.read_variable_by_name(self.name)
        if current is None:
            return await self._create(client)  # released in the meantime
        value = current.value if isinstance(current.value, dict) else {}
        if float(value.get("expires_at") or 0) > time.time():
            return False
        # Expired: remove exactly that lease (by id), then compete for the name like everyone else.
        await _delete_by_id(client, current.id)
        return await self._create(client)

    async def renew(self, client: Any) -> bool:
        """Push the lease out; False when it was broken (the variable id no longer exists)."""
        import httpx

        try:
            await client.request(
                "PATCH",
                "/variables/{id}",
                path_params={"id": self.variable_id},
                json={"value": self._value()},
            )
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 404:
                return False
            raise
        return True

    async def release(self, client: Any) -> None:
        if self.variable_id is not None:
            await _delete_by_id(client, self.variable_id)
            self.variable_id = None

    async def holder_info(self, client: Any) -> dict[str, Any] | None:
        current = await client.read_variable_by_name(self.name)
        return current.value if current is not None and isinstance(current.value, dict) else None


async def _delete_by_id(client: Any, variable_id: Any) -> None:
    import httpx

    try:
        await client.request("DELETE", "/variables/{id}", path_params={"id": variable_id})
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code != 404:
            raise


async def _keep_renewing(lock: RoomLock, client: Any, logger: Logger | LoggerAdapter[Any]) -> None:
    # A period, not a retry: the lease is renewed every RENEW_SECONDS; a miss waits for the next.
    while True:
        await asyncio.sleep(RENEW_SECONDS)
        try:
            if await lock.renew(client):
                continue
        except Exception as exc:  # Prefect unreachable for a moment: the lease covers a few misses
            logger.warning("could not renew the lock of room %s: %s", lock.room, exc)
            continue
        # Our lease was broken (we stalled past it). Take the room back if nobody else has.
        if await lock._create(client):
            logger.warning("the lock of room %s had expired; took it back", lock.room)
        else:
            logger.error(
                "lost the lock of room %s to another campaign after stalling for %.0f s",
                lock.room,
                lock.lease,
            )
            return


@contextlib.asynccontextmanager
async def room_lock(
    room: str, wait_seconds: float, logger: Logger | LoggerAdapter[Any], holder: str = ""
) -> AsyncIterator[RoomLock]:
    """Hold the room's lock for the body; wait up to ``wait_seconds`` for it.

    Example:
        ```python
        async with room_lock("boardroom", 600, logger, holder=str(flow_run_id)):
            ...  # provision, dial, clean up
        ```
    """
    from prefect.client.orchestration import get_client

    lock = RoomLock(room, holder or f"pid-{uuid.uuid4().hex[:8]}")
    started = time.monotonic()
    warned = False
    async with get_client() as client:
        # A poll, not a retry: the room is free when the other campaign is done with it.
        while True:
            try:
                if await lock.try_acquire(client):
                    break
            except Exception as exc:  # Prefect restarting: keep trying until the wait is over
                logger.warning("could not reach Prefect for the lock of room %s: %s", room, exc)
            waited = time.monotonic() - started
            if waited >= wait_seconds:
                raise RoomBusyError(
                    f"room {room} stayed in use by another campaign for {wait_seconds:.0f} s (lock "
                    f"variable {lock.name}); try later or pick another room"
                )
            if not warned and waited >= QUIET_WAIT_SECONDS:
                logger.warning(
                    "room %s is in use by another campaign; waiting up to %.0f s for it", room, wait_seconds
                )
                warned = True
            await asyncio.sleep(POLL_SECONDS)
        renewer = asyncio.create_task(_keep_renewing(lock, client, logger))
        try:
            yield lock
        finally:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
            with contextlib.suppress(Exception):
                await lock.release(client)
