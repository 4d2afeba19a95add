"""Nobody picks up: the bridge reads ``no_answer`` under every presence behaviour the stand-in offers.

Daily does not document whether presence lists a dial-out that is still ringing, and presence is
up to ~15 s behind (https://docs.daily.co/reference/rest-api/presence). The far end here rings for
30 s (the stand-in's default), longer than the campaign's ring timeout, so the campaign hangs up;
the verdict must come from the events (``dialout.connected`` arrived, no ``dialout.answered`` live
or in the history re-read), not from presence. A bridge that answers, in the same campaign, reads
``answered`` under each behaviour too. The 12 s lag is a realistic one (Daily: up to ~15 s; a third
party measured 10-25 s).
"""

from __future__ import annotations

import pytest

from daily_sip.flows.dial.dialer import HELD_UNCONFIRMED_DETAIL

from .conftest import start_stack, stop_stack
from .test_cleanup_resilience import arm, disarm
from .test_dial_campaign import assert_nothing_left_behind, campaign, run

BEHAVIOURS = {
    "lists-ringing-at-once": {"presence_lag": 0, "presence_ringing": True},
    "lists-ringing-12s-late": {"presence_lag": 12, "presence_ringing": True},
    "lists-only-answered": {"presence_lag": 0, "presence_ringing": False},
}


@pytest.mark.parametrize("behaviour", list(BEHAVIOURS))
async def test_nobody_picks_up_reads_no_answer(prefect_server, behaviour):
    stack = start_stack(prefect_server.api_url, ring_timeout=30, **BEHAVIOURS[behaviour])
    try:
        c = campaign(
            "sip:noanswer@pbx.example.com",
            "sip:ok@bridge.example.com",
            name=f"noanswer-{behaviour}",
            # With a lag, the call rings past it, so presence still lists it after it ended (a ghost).
            ring_timeout_seconds=14 if BEHAVIOURS[behaviour]["presence_lag"] else 3,
            after_answer={"mode": "hang_up_after", "hold_seconds": 1},
        )
        state, report = await run(stack, c)
        assert state.is_completed(), state.message
        by_uri = {t.sip_uri: t for t in report.targets}
        unanswered = by_uri["sip:noanswer@pbx.example.com"]
        assert unanswered.status == "no_answer", report.table()
        assert unanswered.answered_at is None
        assert by_uri["sip:ok@bridge.example.com"].status == "answered", report.table()
        [leg] = [
            leg for leg in stack.legs() if leg["room"] == report.room and "noanswer" in leg["destination"]
        ]
        assert leg["answered_at"] is None and leg["end_reason"] == "api-stop"  # hung up at the ring timeout
        assert not [a for a in report.cleanup if "hung up" in a], report.cleanup  # each leg ended in its step
        assert_nothing_left_behind(stack, report)
    finally:
        stop_stack(stack)


async def test_a_leg_heard_only_through_presence_is_found_when_presence_lags(prefect_server):
    # None of the leg's dialout webhooks arrive (participant events do): only presence can tell it
    # is up, and presence is 12 s behind. The flow looks again once the leg is 15 s old.
    stack = start_stack(prefect_server.api_url, presence_lag=12)
    try:
        for event in ("connected", "answered", "stopped"):
            arm(stack, f"WEBHOOK dialout.{event}", mode="drop", seconds=120)
        c = campaign(
            "sip:ok@bridge.example.com",
            name="deaflag",
            ring_timeout_seconds=2,
            after_answer={"mode": "hang_up_after", "hold_seconds": 1},
        )
        _state, report = await run(stack, c)
        [target] = report.targets
        assert report.events_received > 0, "the participant events did arrive"
        assert target.status == "unknown", report.table()
        assert (target.detail or "").startswith(HELD_UNCONFIRMED_DETAIL), report.table()
        [leg] = [leg for leg in stack.legs() if leg["room"] == report.room]
        assert leg["end_reason"] == "api-stop"  # held like an answered call, then hung up by us
        assert_nothing_left_behind(stack, report)
    finally:
        disarm(stack)
        stop_stack(stack)
