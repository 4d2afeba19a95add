"""One dial per attempt: a start whose answer was lost is resolved, never dialled again blindly."""

from __future__ import annotations

from collections import Counter

import pytest

from daily_sip.flows.dial import attempts

from .conftest import start_stack, stop_stack
from .test_cleanup_resilience import arm
from .test_dial_campaign import assert_nothing_left_behind, campaign, run

START = "POST /rooms/{name}/dialOut/start"
PRESENCE = "GET /rooms/{name}/presence"


def dials_per_destination(stack, room: str) -> Counter:
    return Counter(leg["destination"] for leg in stack.legs() if leg["room"] == room)


async def test_lost_start_answers_are_followed_not_redialled(stack):
    # Every start takes effect but its answer is lost, and presence fails meanwhile: only the
    # leg's own webhook events can tell what happened.
    arm(stack, START, mode="lost", count=3)
    arm(stack, PRESENCE, mode="error", seconds=8)
    c = campaign(
        "sip:a@b.example.com",
        "sip:busy@b.example.com",
        "sip:c@b.example.com",
        name="lost",
        redial={"attempts": 3, "backoff_seconds": 0.5},
    )
    _state, report = await run(stack, c)
    assert [t.status for t in report.targets] == ["answered", "busy", "answered"], report.table()
    assert [t.attempts for t in report.targets] == [1, 3, 1]  # busy redials by rule, each once
    assert dials_per_destination(stack, report.room) == {
        "sip:a@b.example.com": 1,
        "sip:busy@b.example.com": 3,
        "sip:c@b.example.com": 1,
    }
    assert_nothing_left_behind(stack, report)


@pytest.fixture(scope="module")
def deaf_stack(prefect_server):
    s = start_stack(prefect_server.api_url, fault_drop=1.0)
    yield s
    stop_stack(s)


async def test_an_unresolvable_lost_start_is_reported_and_not_redialled(deaf_stack, monkeypatch):
    monkeypatch.setattr(attempts, "RESOLVE_SECONDS", 4.0)
    arm(deaf_stack, START, mode="lost", count=1)
    arm(deaf_stack, PRESENCE, mode="error", seconds=40)  # outlasts the run start on a slow machine
    c = campaign(
        "sip:a@b.example.com",
        name="deaf",
        redial={"attempts": 3, "backoff_seconds": 0.5},
        ring_timeout_seconds=2,
    )
    _state, report = await run(deaf_stack, c)
    [target] = report.targets
    assert target.status == "unknown" and "start outcome unknown" in (target.error or ""), report.table()
    assert target.attempts == 1
    assert dials_per_destination(deaf_stack, report.room)["sip:a@b.example.com"] == 1
    assert_nothing_left_behind(deaf_stack, report)
