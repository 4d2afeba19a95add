"""Room locks survive crashed holders and Prefect server restarts (no Daily involved)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from daily_sip.flows.provision.room_lock import LEASE_SECONDS, POLL_SECONDS, room_lock
from tests._prefect_server import _healthy, _prefect_command, _stop, start_prefect_server

HOLDER = """
import asyncio, logging, sys
from daily_sip.flows.provision.room_lock import room_lock

async def main():
    async with room_lock(sys.argv[1], 300, logging.getLogger("holder"), holder="holder"):
        print("held", flush=True)
        await asyncio.sleep(600)

asyncio.run(main())
"""

log = logging.getLogger("test-room-lock")


def start_holder(room: str, api_url: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, room],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PREFECT_API_URL": api_url},
    )
    line = proc.stdout.readline().strip()
    if line != "held":
        proc.kill()
        pytest.fail(f"holder did not take the lock: {line!r}")
    return proc


def kill9(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


async def seconds_to_acquire(room: str, wait: float) -> float:
    started = time.monotonic()
    async with room_lock(room, wait, log, holder="next"):
        return time.monotonic() - started


async def test_a_holder_killed_with_kill_9_frees_the_room_within_the_lease(prefect_server):
    holder = start_holder("lock-k9", prefect_server.api_url)
    kill9(holder)
    took = await seconds_to_acquire("lock-k9", wait=90)
    assert took <= LEASE_SECONDS + POLL_SECONDS + 3, f"room stayed locked {took:.0f} s after kill -9"


async def test_a_live_holder_keeps_the_room_past_its_lease(prefect_server):
    holder = start_holder("lock-live", prefect_server.api_url)
    try:
        from daily_sip.flows.provision.room_lock import RoomBusyError

        with pytest.raises(RoomBusyError):
            await seconds_to_acquire("lock-live", wait=LEASE_SECONDS + 8)
    finally:
        kill9(holder)


def restart(server) -> None:
    """Stop the server and start it again on the same port with the same database."""
    _stop(server.proc)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(server.home),
        PREFECT_SERVER_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{server.home / 'prefect.db'}",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_API_URL=server.api_url,
    )
    with open(server.log_path, "ab") as out:
        server.proc = subprocess.Popen(
            [*_prefect_command(), "server", "start", "--host", "127.0.0.1", "--port", str(server.port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=server.home,
            start_new_session=True,
        )
    deadline = time.monotonic() + 180
    while not _healthy(server.api_url):
        assert time.monotonic() < deadline and server.proc.poll() is None, server.log_tail()
        time.sleep(0.25)


async def test_a_prefect_server_restart_does_not_wedge_the_room():
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = start_prefect_server()  # our own: the session server must not be restarted
    try:
        holder = start_holder("lock-restart", server.api_url)
        kill9(holder)  # dies while holding the room...
        restart(server)  # ...and the server forgets everything it kept in memory
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            took = await seconds_to_acquire("lock-restart", wait=90)
            assert took <= LEASE_SECONDS + POLL_SECONDS + 3, f"room wedged for {took:.0f} s"
            # And the lock still works after the restart: a second taker waits while it is held.
            holder = start_holder("lock-restart", server.api_url)
            kill9(holder)
    finally:
        _stop(server.proc)
