"""Lost and late webhooks: a leg is reconciled (event history, presence) before its verdict.

The rule (docs/outcomes.md): a leg whose own events arrived and no `answered` (live or re-read) is
`no_answer`, unless the hang-up brings its `answered` after all; `unknown` is for a leg of which
nothing arrived that presence still lists."""

from __future__ import annotations

import pytest

from .test_cleanup_resilience import arm, disarm
from .test_dial_campaign import assert_nothing_left_behind, campaign, run


@pytest.fixture
def lossy(stack):
    yield stack
    disarm(stack)


def legs_of(stack, room: str) -> list[dict]:
    return [leg for leg in stack.legs() if leg["room"] == room]


async def test_a_bridge_whose_answer_webhook_is_lost_for_good_reads_no_answer(lossy):
    # `connected` arrives, then Daily's `answered` and `stopped` are lost for good. The stream
    # carried this leg and nothing says it was answered: the rule's verdict is `no_answer`, the
    # price of reading a silent ring as no answer (Daily delivers every event at least once).
    arm(lossy, "WEBHOOK dialout.answered", mode="drop", seconds=120)
    arm(lossy, "WEBHOOK dialout.stopped", mode="drop", seconds=120)
    c = campaign(
        "sip:ok@bridge.example.com",
        name="lostanswer",
        ring_timeout_seconds=2,
        after_answer={"mode": "hang_up_after", "hold_seconds": 1},
    )
    _state, report = await run(lossy, c)
    [target] = report.targets
    assert target.status == "no_answer", report.table()
    [leg] = legs_of(lossy, report.room)
    assert leg["end_reason"] == "api-stop"  # hung up by us at the ring timeout
    assert_nothing_left_behind(lossy, report)


async def test_a_bridge_whose_every_dialout_webhook_is_lost_is_held_not_called_no_answer(lossy):
    # Only the room's participant events get through: the run hears Daily, just nothing of this leg.
    arm(lossy, "WEBHOOK dialout.connected", mode="drop", seconds=120)
    arm(lossy, "WEBHOOK dialout.answered", mode="drop", seconds=120)
    arm(lossy, "WEBHOOK dialout.stopped", mode="drop", seconds=120)
    c = campaign(
        "sip:ok@bridge.example.com",
        name="deafleg",
        ring_timeout_seconds=2,
        after_answer={"mode": "hang_up_after", "hold_seconds": 1},
    )
    _state, report = await run(lossy, c)
    [target] = report.targets
    assert report.events_received > 0, "the participant events did arrive"
    assert target.status == "unknown", report.table()
    [leg] = legs_of(lossy, report.room)
    assert leg["end_reason"] == "api-stop"  # held like an answered call, then hung up by us
    assert_nothing_left_behind(lossy, report)


async def test_a_call_that_ended_unseen_is_still_no_answer(lossy):
    # Daily's 408 for an unanswered call is lost; presence no longer lists the leg, so the verdict stands.
    arm(lossy, "WEBHOOK dialout.error", mode="drop", seconds=120)
    c = campaign("sip:noanswer@pbx.example.com", name="lost408", ring_timeout_seconds=3)
    _state, report = await run(lossy, c)
    [target] = report.targets
    assert target.status == "no_answer", report.table()
    [leg] = legs_of(lossy, report.room)
    assert leg["answered_at"] is None and leg["sip_code"] == 408


async def test_an_answer_webhook_that_comes_after_the_hang_up_still_counts(lossy):
    # The far end answers and hangs up 0.5 s later; Daily's `answered` reaches us 2 s after `stopped`.
    arm(lossy, "WEBHOOK dialout.answered", mode="delay", delay=2.5, seconds=120)
    c = campaign(
        "sip:hangup@pbx.example.com",
        name="lateanswer",
        ring_timeout_seconds=5,
        after_answer={"mode": "hang_up_after", "hold_seconds": 3},
    )
    _state, report = await run(lossy, c)
    [target] = report.targets
    assert target.status == "answered", report.table()
    [leg] = legs_of(lossy, report.room)
    assert leg["end_reason"] == "remote-hangup"


async def test_a_call_hung_up_at_the_ring_timeout_is_answered_once_its_late_webhook_comes(lossy):
    # The answer webhook comes 7 s late: after the ring timeout and the reconcile, while hanging up.
    arm(lossy, "WEBHOOK dialout.answered", mode="delay", delay=7, seconds=120)
    c = campaign(
        "sip:ok@bridge.example.com",
        name="heldlate",
        ring_timeout_seconds=1,
        after_answer={"mode": "hang_up_after", "hold_seconds": 5},
    )
    _state, report = await run(lossy, c)
    [target] = report.targets
    assert target.status == "answered", report.table()
    assert "came after the ring timeout" in (target.detail or ""), report.table()
    [leg] = legs_of(lossy, report.room)
    assert leg["end_reason"] == "api-stop"
    assert_nothing_left_behind(lossy, report)


async def test_an_answer_that_comes_after_the_verdict_but_before_the_report_corrects_it(lossy):
    # The far end answers and hangs up at once; its `answered` reaches us 7 s late, after the
    # 4 s a stop waits for it, so the leg is first called ended_before_answer. Another bridge
    # is still on the call then, so the report is not published yet: the late answer counts.
    arm(lossy, "WEBHOOK dialout.answered", mode="delay", delay=7, seconds=120)
    c = campaign(
        "sip:hangup@pbx.example.com",
        "sip:ok@bridge.example.com",
        name="verylateanswer",
        ring_timeout_seconds=12,
        after_answer={"mode": "hang_up_after", "hold_seconds": 3},
    )
    _state, report = await run(lossy, c)
    first, second = report.targets
    assert first.status == "answered", report.table()
    assert "came late" in (first.detail or ""), report.table()
    assert first.seconds_on_call is not None and first.seconds_on_call >= 0
    assert second.status == "answered", report.table()
    assert_nothing_left_behind(lossy, report)


async def test_dialout_webhooks_delayed_1_to_8_s_give_the_true_statuses(lossy):
    for kind in ("connected", "answered", "stopped", "error"):
        arm(lossy, f"WEBHOOK dialout.{kind}", mode="delay", delay=1, jitter=7, seconds=180)
    uris = [f"sip:hangup-{i}@pbx.example.com" for i in range(3)] + [
        f"sip:ok{i}@bridge.example.com" for i in range(2)
    ]
    uris.append("sip:busy@pbx.example.com")
    c = campaign(
        *uris,
        name="jitteredhooks",
        ring_timeout_seconds=14,
        after_answer={"mode": "hang_up_after", "hold_seconds": 10},
    )
    _state, report = await run(lossy, c)
    statuses = [t.status for t in report.targets]
    assert statuses == ["answered"] * 5 + ["busy"], report.table()
    assert_nothing_left_behind(lossy, report)
