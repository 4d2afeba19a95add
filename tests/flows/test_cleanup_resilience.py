"""Nothing left behind when Daily fails during cleanup or a run is stopped mid-provisioning.

Faults are armed on the stand-in per route (`POST /_emulator/faults`), so each test decides
exactly which Daily calls fail and for how long.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import httpx
import pytest

from daily_sip.flows.cleanup import actions as cleanup
from daily_sip.flows.cleanup.ledger import load_ledger

from .conftest import start_stack, stop_stack
from .test_dial_campaign import campaign, run

CLEANUP_ROUTES = (
    "DELETE /rooms/{name}",
    "POST /rooms/{name}/dialOut/stop",
    "GET /rooms/{name}/presence",
    "POST /rooms/{name}",
)


def arm(stack, route: str, **fault) -> None:
    r = httpx.post(f"{stack.emulator.root}/_emulator/faults", json={"route": route, **fault}, timeout=10)
    assert r.status_code == 200, r.text


def disarm(stack) -> None:
    httpx.delete(f"{stack.emulator.root}/_emulator/faults", timeout=10).raise_for_status()


async def wait_answered(stack, prefix: str) -> str:
    for _ in range(300):
        up = [
            leg
            for leg in stack.legs()
            if leg["room"].startswith(prefix) and leg["state"] == "answered" and leg["active"]
        ]
        if up:
            return up[0]["room"]
        await asyncio.sleep(0.05)
    pytest.fail("no leg came up")


def rooms_named(stack, prefix: str) -> list[dict]:
    return [r for r in stack.rooms() if r["name"].startswith(prefix)]


async def test_created_room_expires_and_ejects_everyone_at_exp(stack):
    """A run killed so hard that nothing cleans up still leaves nothing past `exp`."""
    c = campaign("sip:a@b.example.com", name="expiring", after_answer={"mode": "stay", "max_seconds": 60})
    task = asyncio.create_task(run(stack, c))
    try:
        room = await wait_answered(stack, "expiring-")
        config = next(r for r in stack.rooms() if r["name"] == room)["room"]["config"]
        assert config.get("exp"), config
        assert config.get("eject_at_room_exp") is True, config
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_cancel_while_the_room_is_being_created_removes_the_room(stack):
    # Daily takes 2 s to create the room; the run is cancelled before the answer arrives.
    created = stack.emulator.introspect("requests")["by_route"].get("POST /rooms", {}).get("200", 0)
    arm(stack, "POST /rooms", mode="delay", delay=3.0, count=1)
    c = campaign("sip:a@b.example.com", name="cancelprov")
    task = asyncio.create_task(run(stack, c))
    for _ in range(600):  # until the create request is at Daily
        if stack.emulator.introspect("faults")[-1]["hits"]:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(3.5)  # the create lands after the cancel
    by_route = stack.emulator.introspect("requests")["by_route"]
    assert by_route["POST /rooms"].get("200", 0) == created + 1, "the room was never created: no race"
    assert rooms_named(stack, "cancelprov-") == []


async def test_cleanup_rides_out_half_a_minute_of_daily_errors(stack):
    c = campaign(
        "sip:a@b.example.com",
        "sip:c@b.example.com",
        name="outage",
        after_answer={"mode": "stay", "max_seconds": 60},
        deadline_seconds=4,
    )
    task = asyncio.create_task(run(stack, c))
    room = await wait_answered(stack, "outage-")
    for route in CLEANUP_ROUTES:
        arm(stack, route, mode="error", seconds=30)
    _state, report = await asyncio.wait_for(task, 200)
    assert report.error and "deadline" in report.error
    assert f"deleted room {room}" in report.cleanup, report.cleanup
    assert report.cleanup_pending == []
    assert rooms_named(stack, "outage-") == []
    assert not [leg for leg in stack.legs() if leg["room"] == room and leg["active"]]
    assert await load_ledger(report.flow_run_id) is None


async def test_cleanup_that_cannot_finish_reports_what_is_pending_and_keeps_the_ledger(stack, monkeypatch):
    monkeypatch.setattr(cleanup, "CLEANUP_BUDGET_SECONDS", 3.0)
    c = campaign(
        "sip:a@b.example.com",
        name="pending",
        after_answer={"mode": "stay", "max_seconds": 60},
        deadline_seconds=3,
    )
    task = asyncio.create_task(run(stack, c))
    room = await wait_answered(stack, "pending-")
    for route in CLEANUP_ROUTES:
        arm(stack, route, mode="error", seconds=300)
    try:
        state, report = await asyncio.wait_for(task, 120)
        assert any(p.startswith(f"delete room {room}") for p in report.cleanup_pending), report
        # Its bridge answered, but what it left on makes the run Failed, saying what and who finishes it.
        assert state.is_failed() and "left for the sweeper: " in state.message, state
        assert f"delete room {room}" in state.message.split("left for the sweeper: ")[1], state
        assert "STILL PENDING" in report.summary_markdown()
        ledger = await load_ledger(report.flow_run_id)
        assert ledger is not None and ledger.pending == report.cleanup_pending
    finally:
        disarm(stack)
    from daily_sip.flows.sweeper import sweep_ledgers

    swept = await sweep_ledgers(grace_seconds=0)
    assert report.flow_run_id in swept.finished, swept
    assert rooms_named(stack, "pending-") == []
    assert await load_ledger(report.flow_run_id) is None


async def test_a_dialout_error_arriving_during_the_hang_up_decides_the_status(stack):
    # The campaign gives up ringing after 1 s; Daily's 408 comes at 1.5 s, while our stop is slow.
    arm(stack, "POST /rooms/{name}/dialOut/stop", mode="delay", delay=1.5, count=1)
    c = campaign("sip:noanswer@b.example.com", name="lateerror", ring_timeout_seconds=1)
    _state, report = await run(stack, c)
    [target] = report.targets
    assert (target.status, target.sip_code) == ("no_answer", 408), report.table()


@pytest.fixture(scope="module")
def tight_stack(prefect_server):
    s = start_stack(prefect_server.api_url, session_limit=2, hangup_after=30)
    yield s
    stop_stack(s)


async def test_a_leg_whose_hang_up_fails_keeps_its_session_slot(tight_stack):
    stack = tight_stack
    arm(stack, "POST /rooms/{name}/dialOut/stop", mode="error", seconds=30)
    c = campaign(
        *[f"sip:t{i}@b.example.com" for i in range(4)],
        name="slots",
        session_limit=2,
        dial_in={"enabled": False},
        after_answer={"mode": "hang_up_after", "hold_seconds": 0.5},
    )
    _state, report = await asyncio.wait_for(run(stack, c), 200)
    assert [t.status for t in report.targets] == ["answered"] * 4, report.table()
    legs = [leg for leg in stack.legs() if leg["room"] == report.room]
    spans = [
        (datetime.fromisoformat(leg["created_at"]), datetime.fromisoformat(leg["ended_at"])) for leg in legs
    ]
    most = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert most <= 2, "more legs up at once than the session limit"
