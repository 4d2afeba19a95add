"""Outcomes you can trust: forged events change nothing, silence is not "no answer", and every
telephony encoding the stand-in offers gives the right status or an honestly generic one."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid

import httpx
import pytest

from daily_sip.flows.dial.silence import NO_EVENTS_ADVICE
from daily_sip.receiver.events import proof_of, to_prefect_event
from daily_sip.tasks.signature import sign

from .conftest import start_stack, stop_stack
from .test_dial_campaign import assert_nothing_left_behind, campaign, run


@pytest.fixture
def own_stack(prefect_server):
    started = []

    def _start(**flags):
        started.append(start_stack(prefect_server.api_url, **flags))
        return started[-1]

    yield _start
    for s in started:
        stop_stack(s)


async def wait_for_leg(stack, user_part: str, state: str, within: float = 60.0) -> dict:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for leg in stack.legs():
            if leg["destination"].startswith(f"sip:{user_part}@") and leg["state"] == state:
                return leg
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {user_part} leg reached {state}")


def forged_events(leg: dict) -> list[dict]:
    """`dialout.answered` for a real leg: once bare, once signed with a key that is not Daily's."""
    envelope = {
        "version": "1.0.0",
        "type": "dialout.answered",
        "id": f"forged-{uuid.uuid4()}",
        "payload": {
            "timestamp": str(int(time.time())),
            "session_id": leg["id"],
            "user_id": leg["userId"],
            "domain_id": "d",
            "room": leg["room"],
            "destination": leg["destination"],
        },
        "event_ts": time.time(),
    }
    bare = to_prefect_event(envelope)
    envelope = {**envelope, "id": f"forged-{uuid.uuid4()}"}
    body = json.dumps(envelope).encode()
    ts = str(int(time.time()))
    wrong_key = base64.b64decode(base64.b64encode(b"not-the-daily-secret"))
    signed = to_prefect_event(envelope, proof_of(ts, sign(wrong_key, ts, body), body))
    return [e.model_dump(mode="json") for e in (bare, signed)]


async def test_forged_answered_event_posted_to_prefect_changes_nothing(own_stack, prefect_server):
    stack = own_stack(ring_timeout=8)
    c = campaign(
        "sip:noanswer@pbx.example.com",
        "sip:ok@pbx.example.com",
        ring_timeout_seconds=15,
        dial_in={"enabled": False},
    )
    flow = asyncio.create_task(run(stack, c))
    leg = await wait_for_leg(stack, "noanswer", "ringing")
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{prefect_server.api_url}/events", json=forged_events(leg))
        assert r.status_code in (200, 204), r.text
    state, report = await flow
    noanswer, ok = report.targets
    assert (noanswer.status, noanswer.sip_code) == ("no_answer", 408), noanswer
    assert noanswer.answered_at is None
    assert ok.status == "answered", "genuine, signed events still count"
    assert report.forged_events >= 2
    assert "not signed by Daily were ignored" in report.summary_markdown()
    assert state.message.startswith("1/2 bridges answered; no answer 1")
    assert stack.emulator.introspect(f"legs/{leg['id']}")["answered_at"] is None


async def test_campaign_with_the_webhook_not_configured_says_so(own_stack):
    # Daily's documented idle default (0) enforced: the flow's explicit value keeps the leg up.
    stack = own_stack(enforce_idle_default=True)
    c = campaign("sip:ok@pbx.example.com", ring_timeout_seconds=3, dial_in={"enabled": False})
    state = await __import__("daily_sip.flows.dial_campaign", fromlist=["x"]).dial_campaign(
        campaign=c, webhook_url="", return_state=True
    )
    report = await state.aresult(raise_on_failure=False)
    [target] = report.targets
    assert target.status == "no_events", target
    assert "presence lists the call" in target.detail
    assert NO_EVENTS_ADVICE in target.detail and report.notes == [NO_EVENTS_ADVICE]
    assert "is the Daily webhook pointed at the receiver" in state.message
    # The stand-in answered it, Daily's idle timeout did not cut it, the flow hung up.
    legs = [leg for leg in stack.legs() if leg["room"] == report.room]
    assert [(leg["state"], leg["end_reason"]) for leg in legs] == [("stopped", "api-stop")]
    created = [
        r["body"]
        for r in stack.emulator.introspect("requests")["recent"]
        if r["route"] == "POST /rooms" and r["body"].get("name") == report.room
    ]
    assert created[0]["properties"]["dialout_config"]["max_idle_timeout_sec"] == c.deadline_seconds + 120
    assert_nothing_left_behind(stack, report)


TARGETS = ("busy", "noanswer", "declined", "unreachable", "bridge")
EXPECTED = {
    "sip-code": ["busy", "no_answer", "rejected", "unreachable", "answered"],
    "free-text": ["ended_before_answer"] * 4 + ["answered"],
    "stopped": ["ended_before_answer"] * 4 + ["answered"],
    "connected-stopped": ["ended_before_answer"] * 4 + ["answered"],
}


@pytest.mark.parametrize("profile", EXPECTED)
async def test_each_telephony_profile_gives_right_or_generic_status(own_stack, profile):
    stack = own_stack(telephony_profile=profile, ring_timeout=2, answer_delay=0.3)
    c = campaign(
        *[f"sip:{t}@pbx.example.com" for t in TARGETS], ring_timeout_seconds=8, dial_in={"enabled": False}
    )
    _state, report = await run(stack, c)
    got = [t.status for t in report.targets]
    print(f"\n{profile}: " + ", ".join(f"{t}={s}" for t, s in zip(TARGETS, got, strict=True)))
    assert got == EXPECTED[profile], [(t.status, t.error, t.detail) for t in report.targets]
    for t in report.targets[:4]:
        if t.status == "ended_before_answer":
            assert t.error or t.detail, "the generic status keeps what Daily said"
    assert_nothing_left_behind(stack, report)
