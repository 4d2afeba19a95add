"""A campaign that overstates the room's session limit learns Daily's, instead of failing targets."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from .conftest import start_stack, stop_stack
from .test_dial_campaign import assert_nothing_left_behind, campaign, run

START = "POST /rooms/{name}/dialOut/start"


@pytest.fixture(scope="module")
def three_session_stack(prefect_server):
    s = start_stack(prefect_server.api_url, session_limit=3)
    yield s
    stop_stack(s)


async def test_a_room_that_holds_fewer_sessions_than_the_campaign_says_fails_no_target(three_session_stack):
    stack = three_session_stack
    c = campaign(
        *[f"sip:s{i}@bridge.example.com" for i in range(20)],
        name="overstated",
        session_limit=10,
        dial_in={"enabled": False},
        after_answer={"mode": "hang_up_after", "hold_seconds": 2},
    )
    state, report = await asyncio.wait_for(run(stack, c), 240)
    assert [t.status for t in report.targets] == ["answered"] * 20, report.table()
    assert state.is_completed(), state.message
    refused = stack.emulator.introspect("requests")["by_route"][START].get("400", 0)
    assert refused <= 5, f"{refused} dialOut/start refused for the session limit"
    [note] = [n for n in report.notes if n.startswith("session limit found")]
    assert "at most 3 legs at once" in note and "set session_limit to 3" in note, note
    legs = [leg for leg in stack.legs() if leg["room"] == report.room]
    spans = [
        (datetime.fromisoformat(leg["created_at"]), datetime.fromisoformat(leg["ended_at"])) for leg in legs
    ]
    assert max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans) <= 3
    assert_nothing_left_behind(stack, report)
