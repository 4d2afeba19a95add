"""Room-level events belong to the run: an earlier campaign's signed `dialin.ready` in the same
room, left in Prefect or replayed through its API, does not make the next run's dial-in ready."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from prefect.client.orchestration import get_client

from daily_sip.flows.collect.listener import room_filter

from .test_cleanup_resilience import arm, disarm
from .test_dial_campaign import assert_nothing_left_behind, campaign, run
from .test_trust import own_stack, wait_for_leg

__all__ = ["own_stack"]  # the fixture, shared with test_trust


async def _signed_dialin_ready(room: str) -> list[dict]:
    async with get_client() as client:
        page = await client.read_events(
            filter=room_filter(room, datetime.now(UTC) - timedelta(minutes=5)), limit=50
        )
    return [e.model_dump(mode="json") for e in page.events if e.event == "daily.dialin.ready"]


async def test_a_replayed_dialin_ready_of_an_earlier_campaign_does_not_count(own_stack, prefect_server):
    stack = own_stack()
    async with httpx.AsyncClient(headers=stack.emulator.headers()) as http:
        r = await http.post(f"{stack.emulator.base_url}/rooms", json={"name": "replay-room"})
        assert r.status_code == 200, r.text
    c = campaign("sip:ok@bridge.example.com", room="replay-room", name="first")
    _state, first = await run(stack, c)
    assert first.dialin_ready, "the first campaign's endpoint reported dialin.ready"
    earlier = await _signed_dialin_ready("replay-room")
    assert earlier, "the receiver relayed the signed dialin.ready"

    # The next campaign in the room gets no dialin.ready from Daily, but the earlier one is still
    # in Prefect's history (and the live stream's look-back), and is replayed once more meanwhile.
    arm(stack, "WEBHOOK dialin.ready", mode="drop", seconds=120)
    try:
        c = campaign(
            "sip:ok@bridge.example.com",
            room="replay-room",
            name="second",
            after_answer={"mode": "hang_up_after", "hold_seconds": 3},
        )
        flow = asyncio.create_task(run(stack, c))
        await wait_for_leg(stack, "ok", "answered")
        replays = [{**e, "id": str(uuid.uuid4()), "occurred": datetime.now(UTC).isoformat()} for e in earlier]
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{prefect_server.api_url}/events", json=replays)
            assert r.status_code in (200, 204), r.text
        _state, second = await flow
    finally:
        disarm(stack)
    assert second.dialin_ready == [], second.summary_markdown()
    assert second.forged_events >= 1, "the replay is counted like a forged event"
    assert second.targets[0].status == "answered"
    assert_nothing_left_behind(stack, second)
