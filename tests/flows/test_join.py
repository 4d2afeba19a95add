"""Joined, not just answered: DTMF scripts into IVR bridges, end to end.

Real Prefect server, receiver and stand-in processes. The stand-in's `ivr-<digits>` bridges wait
3 s for `<digits>#` and hang up 0.5 s after a wrong entry; its record of the tones each leg heard
(`/_emulator/legs/:id/dtmf`) is what the assertions compare against.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from daily_sip.flows.report.model import CampaignReport

from .conftest import CampaignStack, start_stack, stop_stack
from .test_dial_campaign import assert_nothing_left_behind, campaign, run

DIGIT_MS = 50
FAST_IVR = {"dtmf_delay_seconds": 0.2, "dtmf_digit_ms": DIGIT_MS, "join_confirm_seconds": 1.5}


@pytest.fixture(scope="module")
def ivr_stack(prefect_server) -> Iterator[CampaignStack]:
    s = start_stack(prefect_server.api_url, ivr_timeout=3, ivr_reject_delay=0.5)
    yield s
    stop_stack(s)


def heard(stack: CampaignStack, report: CampaignReport, user: str) -> dict:
    leg = next(
        leg for leg in stack.legs() if leg["room"] == report.room and f":{user}@" in leg["destination"]
    )
    r = httpx.get(
        f"{stack.emulator.base_url.removesuffix('/v1')}/_emulator/legs/{leg['id']}/dtmf",
        timeout=10,
        trust_env=False,
    )
    r.raise_for_status()
    return r.json()


async def test_right_pin_joins_wrong_pin_drops_and_long_scripts_are_split(ivr_stack):
    c = campaign(
        {
            "bridge": "pbx",
            "sip_uri": "sip:ivr-4711@pbx.example.com",
            "passcode": "4711",
            "display_name": "Right PIN",
            **FAST_IVR,
        },
        {
            "bridge": "pbx",
            "sip_uri": "sip:ivr-4711@other.example.com",
            "passcode": "1234",
            "display_name": "Wrong PIN",
            **FAST_IVR,
        },
        {
            "sip_uri": "sip:long-script@b.example.com",
            "dtmf": "123456789#12345678901234#,,4711#",
            **FAST_IVR,
            "join_confirm_seconds": 0.5,
        },
        "sip:plain@b.example.com",
        success={"min_answered_fraction": 1.0},
    )
    state, report = await run(ivr_stack, c)
    right, wrong, long, plain = report.targets
    assert [t.status for t in report.targets] == ["joined", "dropped_after_dtmf", "joined", "answered"]
    assert state.is_failed()  # the wrong PIN did not get in, and every bridge had to
    assert state.message == "3/4 bridges joined or answered (answered 1, joined 2); dropped after dtmf 1"

    # Right PIN: the IVR heard it and kept the call; the report times the answer and the join.
    assert heard(ivr_stack, report, "ivr-4711")["ivr"]["state"] == "accepted"
    assert right.dtmf_sent == "4711#" and [s.tones for s in right.dtmf_steps] == ["4711#"]
    assert 0 < right.seconds_to_answer < right.seconds_to_joined
    assert right.joined_at == right.dtmf_steps[-1].sent_at
    assert right.dtmf_steps[0].after_answer_s >= 0.2  # the first prompt delay

    # Wrong PIN: answered, then hung up right after the script; the detail says what to check.
    wrong_leg = next(
        leg
        for leg in ivr_stack.legs()
        if leg["room"] == report.room and "other.example.com" in leg["destination"]
    )
    assert wrong_leg["ivr"]["state"] == "rejected" and wrong_leg["ivr"]["entries"][0]["digits"] == "1234"
    assert wrong.detail.startswith("far end hung up") and wrong.detail.endswith("check meeting ID / passcode")
    assert wrong.seconds_to_joined is None and wrong.joined_at is None

    # Long script: 25 tones then a 2 s pause then 5, as three calls of <= 20 tones, each after the
    # previous one had time to play (tones x 50 ms) plus the pause.
    calls = heard(ivr_stack, report, "long-script")["dtmf"]
    assert [d["tones"] for d in calls] == ["123456789#", "12345678901234#", "4711#"]
    assert all(d["digitDurationMs"] == DIGIT_MS for d in calls)
    gap1, gap2 = calls[1]["ts"] - calls[0]["ts"], calls[2]["ts"] - calls[1]["ts"]
    assert 10 * DIGIT_MS / 1000 <= gap1 < 10 * DIGIT_MS / 1000 + 0.8, gap1
    assert 15 * DIGIT_MS / 1000 + 2.0 <= gap2 < 15 * DIGIT_MS / 1000 + 2.8, gap2
    assert [s.tones for s in long.dtmf_steps] == [d["tones"] for d in calls]
    assert long.dtmf_sent == "123456789#12345678901234#,,4711#"

    # No script: answered keeps its meaning.
    assert plain.dtmf_script is None and plain.seconds_to_answer > 0 and plain.seconds_to_joined is None

    table = report.table()
    assert "joined_s" in table and "4711#@" in table and "check meeting ID / passcode" in table
    assert "`4711#` at " in report.summary_markdown()
    assert_nothing_left_behind(ivr_stack, report)


async def test_success_can_count_answered_instead_of_joined(ivr_stack):
    c = campaign(
        {"bridge": "pbx", "sip_uri": "sip:ivr-99@pbx.example.com", "passcode": "98", **FAST_IVR},
        success={"min_answered_fraction": 1.0, "counts": "answered"},
    )
    state, report = await run(ivr_stack, c)
    assert report.targets[0].status == "dropped_after_dtmf"
    assert state.is_completed() and state.message == "1/1 bridges answered"


async def test_missing_pin_times_out_and_reads_as_dropped_not_joined(ivr_stack):
    # The script is sent but the IVR wanted another PIN and no '#' ends it: it hangs up at its timeout.
    c = campaign(
        {"sip_uri": "sip:ivr-5555@pbx.example.com", "dtmf": "55", **FAST_IVR, "join_confirm_seconds": 5}
    )
    _state, report = await run(ivr_stack, c)
    t = report.targets[0]
    assert t.status == "dropped_after_dtmf" and "after the last tone" in t.detail
    stopped_after = (t.stopped_at - t.answered_at).total_seconds()
    assert 2.5 < stopped_after < 4.5, stopped_after  # the stand-in's 3 s PIN timeout
    assert isinstance(t.dtmf_steps[0].sent_at, datetime)
