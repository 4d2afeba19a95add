"""The campaign flow end to end: real Prefect server, stand-in and receiver processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx
import pytest

from daily_sip.flows.campaign.model import Campaign
from daily_sip.flows.dial_campaign import dial_campaign
from daily_sip.flows.report.model import CampaignReport

from .conftest import start_stack, stop_stack


def campaign(*uris: str, **overrides) -> Campaign:
    spec = {
        "name": "t",
        "targets": [{"sip_uri": u} if isinstance(u, str) else u for u in uris],
        "ring_timeout_seconds": 5,
        "after_answer": {"mode": "hang_up_after", "hold_seconds": 0.5},
        "success": {"min_answered_fraction": 0},
        "ready_timeout_seconds": 5,
    }
    spec.update(overrides)
    return Campaign.model_validate(spec)


async def run(stack, c: Campaign) -> tuple[object, CampaignReport]:
    state = await dial_campaign(campaign=c, webhook_url=stack.webhook_url, return_state=True)
    return state, await state.aresult(raise_on_failure=False)


def assert_nothing_left_behind(stack, report: CampaignReport) -> None:
    """SIP off (or the room gone) and no leg up, as the stand-in itself sees it."""
    rooms = {r["name"]: r for r in stack.rooms()}
    room = rooms.get(report.room)
    if room is not None:
        assert not room["sip_enabled"], room
        assert room["legs_up"] == 0, room
    assert not [leg for leg in stack.legs() if leg["room"] == report.room and leg["active"]]


async def test_every_outcome_is_reported_and_everything_is_turned_off(stack):
    c = campaign(
        {
            "sip_uri": "sip:zoom-ops@bridge.example.com",
            "dtmf": "123#",
            "dtmf_delay_seconds": 0.1,
            "join_confirm_seconds": 0.3,
        },
        "sip:busy@pbx.example.com",
        "sip:noanswer@pbx.example.com",
        "sip:notfound@pbx.example.com",
        "sip:hangup@pbx.example.com",
        {"sip_uri": "sip:teams@t.example.com", "headers": {"X-Campaign": "weekly sync"}},
        dial_in={"num_endpoints": 2},
        # Longer than the stand-in's hangup hold (0.5 s), so the far end hangs up first.
        after_answer={"mode": "hang_up_after", "hold_seconds": 1.5},
    )
    state, report = await run(stack, c)
    assert state.is_completed(), state.message
    by_uri = {t.sip_uri: t for t in report.targets}
    assert by_uri["sip:zoom-ops@bridge.example.com"].status == "joined"
    assert by_uri["sip:zoom-ops@bridge.example.com"].dtmf_sent == "123#"
    busy = by_uri["sip:busy@pbx.example.com"]
    assert (busy.status, busy.sip_code) == ("busy", 486)
    assert by_uri["sip:noanswer@pbx.example.com"].status == "no_answer"
    assert by_uri["sip:noanswer@pbx.example.com"].sip_code == 408
    assert (
        by_uri["sip:notfound@pbx.example.com"].status,
        by_uri["sip:notfound@pbx.example.com"].sip_code,
    ) == ("unreachable", 404)
    hangup = by_uri["sip:hangup@pbx.example.com"]
    assert hangup.status == "answered" and hangup.detail == "far end hung up"
    assert by_uri["sip:teams@t.example.com"].status == "answered"
    assert state.message == (
        "3/6 bridges joined or answered (answered 2, joined 1); busy 1, no answer 1, unreachable 1"
    )
    # What the far ends saw: the DTMF arrived, the X- header rode along, every leg had a userId.
    legs = [leg for leg in stack.legs() if leg["room"] == report.room]
    zoom = next(leg for leg in legs if leg["destination"].startswith("sip:zoom-ops"))
    assert [d["tones"] for d in zoom["dtmf"]] == ["123#"]
    teams = next(leg for leg in legs if leg["destination"].startswith("sip:teams"))
    assert teams["sip_headers"] == {"X-Campaign": "weekly sync"}
    assert all(leg["userId"] for leg in legs)
    assert len(report.dialin_endpoints) == 2
    assert sorted(report.dialin_ready) == sorted(report.dialin_endpoints)
    assert report.room_created and report.cleanup == [f"deleted room {report.room}"]
    assert report.room not in {r["name"] for r in stack.rooms()}


async def test_more_targets_than_the_session_limit_wait_for_a_free_leg(stack):
    c = campaign(
        *[f"sip:bridge-{i}@b.example.com" for i in range(7)],
        session_limit=3,
        dial_in={"num_endpoints": 1},
        after_answer={"mode": "hang_up_after", "hold_seconds": 0.4},
    )
    state, report = await run(stack, c)
    assert state.is_completed(), state.message
    assert report.answered == 7
    legs = [leg for leg in stack.legs() if leg["room"] == report.room]
    assert len(legs) == 7
    spans = [(leg["created_at"], leg["ended_at"]) for leg in legs]
    most_at_once = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert most_at_once <= 2, f"{most_at_once} legs up at once; limit 3 minus 1 dial-in endpoint"


@pytest.mark.parametrize(
    ("name", "properties"),
    [
        ("standing-room", {}),
        ("tuned-room", {"enable_dialout": True, "dialout_config": {"max_idle_timeout_sec": 30}}),
    ],
)
async def test_existing_room_gets_exactly_its_settings_back(stack, name, properties):
    async with httpx.AsyncClient(headers=stack.emulator.headers()) as http:
        r = await http.post(f"{stack.emulator.base_url}/rooms", json={"name": name, "properties": properties})
        assert r.status_code == 200
        before = (await http.get(f"{stack.emulator.base_url}/rooms/{name}")).json()["config"]
    c = campaign("sip:a@b.example.com", room=name)
    state, report = await run(stack, c)
    assert state.is_completed()
    room = next(r for r in stack.rooms() if r["name"] == name)
    assert not room["sip_enabled"] and room["legs_up"] == 0
    assert room["enable_dialout"] is bool(properties.get("enable_dialout"))
    assert not report.room_created and f"SIP off in room {name}" in report.cleanup[0]
    async with httpx.AsyncClient(headers=stack.emulator.headers()) as http:
        after = (await http.get(f"{stack.emulator.base_url}/rooms/{name}")).json()["config"]
    # Nothing gained, nothing lost: no dialout_config the room did not have.
    assert after == before, (before, after)


async def test_redial_on_busy_counts_attempts(stack):
    c = campaign(
        "sip:busy-7@pbx.example.com", redial={"attempts": 3, "backoff_seconds": 0.1, "outcomes": ["busy"]}
    )
    state, report = await run(stack, c)
    assert report.targets[0].status == "busy" and report.targets[0].attempts == 3
    assert len(report.targets[0].session_ids) == 3
    assert state.is_completed()  # success rule min 0


async def test_success_rule_fails_the_run_with_a_clear_message(stack):
    c = campaign("sip:a@b.example.com", "sip:busy@b.example.com", success={"min_answered_fraction": 1.0})
    state, report = await run(stack, c)
    assert state.is_failed()
    assert state.message == "1/2 bridges answered; busy 1"
    assert_nothing_left_behind(stack, report)


async def test_deadline_mid_campaign_hangs_up_and_cleans_up(stack):
    c = campaign(
        "sip:a@b.example.com",
        "sip:c@b.example.com",
        deadline_seconds=1.5,
        after_answer={"mode": "stay", "max_seconds": 60},
    )
    state, report = await run(stack, c)
    assert state.is_failed()
    assert "deadline" in report.error
    assert {t.status for t in report.targets} <= {"answered", "canceled"}
    assert_nothing_left_behind(stack, report)
    assert report.room not in {r["name"] for r in stack.rooms()}


async def test_room_deleted_under_the_campaign_fails_targets_but_cleans_up(stack):
    c = campaign(
        "sip:a@b.example.com",
        *[f"sip:late-{i}@b.example.com" for i in range(4)],
        session_limit=2,
        dial_in={"enabled": False},
        after_answer={"mode": "hang_up_after", "hold_seconds": 1.0},
    )
    flow_task = asyncio.create_task(run(stack, c))
    async with httpx.AsyncClient(headers=stack.emulator.headers()) as http:
        for _ in range(100):
            rooms = [r for r in stack.rooms() if r["name"].startswith("t-") and r["legs_up"]]
            if rooms:
                break
            await asyncio.sleep(0.05)
        await http.delete(f"{stack.emulator.base_url}/rooms/{rooms[0]['name']}")
    state, report = await flow_task
    assert state.is_completed() or state.is_failed()
    assert all(t.status != "unknown" for t in report.targets)
    assert any(t.status == "failed" for t in report.targets)
    assert report.cleanup == ["room already gone"]
    assert not [leg for leg in stack.legs() if leg["room"] == report.room and leg["active"]]


async def test_cancelled_run_hangs_up_and_removes_the_room(stack):
    c = campaign(
        "sip:a@b.example.com", "sip:c@b.example.com", after_answer={"mode": "stay", "max_seconds": 60}
    )
    flow_task = asyncio.create_task(run(stack, c))
    for _ in range(200):
        if any(leg["state"] == "answered" and leg["active"] for leg in stack.legs()):
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("no leg came up")
    room = next(leg["room"] for leg in stack.legs() if leg["active"])
    flow_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flow_task
    assert room not in {r["name"] for r in stack.rooms()}
    assert not [leg for leg in stack.legs() if leg["room"] == room and leg["active"]]


async def _answered_leg_room(stack) -> str:
    for _ in range(200):
        up = [leg for leg in stack.legs() if leg["state"] == "answered" and leg["active"]]
        if up:
            return up[0]["room"]
        await asyncio.sleep(0.05)
    pytest.fail("no leg came up")


async def test_cancel_requested_through_prefect_stops_an_in_process_run(stack):
    """`prefect flow-run cancel` (or Cancel in the UI) on a run nobody supervises, e.g. `daily-sip run`."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    c = campaign(
        "sip:a@b.example.com", "sip:c@b.example.com", after_answer={"mode": "stay", "max_seconds": 120}
    )
    flow_task = asyncio.create_task(run(stack, c))
    room = await _answered_leg_room(stack)
    run_id = next(r for r in await _flow_runs() if room.endswith(str(r.id).replace("-", "")[:8])).id
    async with get_client() as client:
        await client.set_flow_run_state(run_id, Cancelling(message="test"), force=True)
    state, report = await asyncio.wait_for(flow_task, 30)
    assert state.is_cancelled(), state
    assert report.error == "cancelled on request"
    assert {t.status for t in report.targets} <= {"answered", "canceled"}
    assert room not in {r["name"] for r in stack.rooms()}
    assert not [leg for leg in stack.legs() if leg["room"] == room and leg["active"]]
    async with get_client() as client:
        assert (await client.read_flow_run(run_id)).state.is_cancelled()


async def _flow_runs():
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    async with get_client() as client:
        return await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING]))
            )
        )


async def test_two_campaigns_into_one_room_take_turns(stack):
    async with httpx.AsyncClient(headers=stack.emulator.headers()) as http:
        r = await http.post(f"{stack.emulator.base_url}/rooms", json={"name": "shared-room"})
        assert r.status_code == 200
    c = campaign(
        "sip:a@b.example.com",
        "sip:c@b.example.com",
        room="shared-room",
        after_answer={"mode": "hang_up_after", "hold_seconds": 1.5},
    )
    (s1, r1), (s2, r2) = await asyncio.gather(run(stack, c), run(stack, c))
    assert s1.is_completed() and s2.is_completed(), (s1, s2)
    first, second = sorted((r1, r2), key=lambda r: min(t.connected_at for t in r.targets))
    # Every leg of the second campaign came up after the first had hung up all of its own.
    assert max(t.stopped_at for t in first.targets) <= min(t.connected_at for t in second.targets)
    room = next(r for r in stack.rooms() if r["name"] == "shared-room")
    assert not room["sip_enabled"] and room["legs_up"] == 0


def test_bad_campaign_is_rejected_before_any_request(stack, tmp_path):
    before = stack.requests_total()
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "targets:\n"
        "  - sip_uri: bridge.example.com\n"
        "  - sip_uri: sip:ok@b.example.com\n    dtmf: '12X'\n"
        "  - sip_uri: sip:ok@b.example.com\n"
        "audio_codecs: [OPUS, AMR]\n"
        "dial_in: {num_endpoints: 5}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "daily_sip.cli", "run", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    for words in (
        "targets.0.sip_uri: must start with 'sip:'",
        "targets.1.dtmf: has invalid tones ['X']",
        "audio_codecs.1: Input should be 'OPUS', 'G722', 'PCMU' or 'PCMA'",
    ):
        assert words in result.stderr, result.stderr
    assert stack.requests_total() == before


def test_cross_field_problems_are_listed_together(stack):
    before = stack.requests_total()
    with pytest.raises(ValueError) as info:
        # The host is case-insensitive (the user part is not: see test_campaign_inputs).
        campaign("sip:a@b.example.com", "sip:a@B.example.com", dial_in={"num_endpoints": 5})
    text = str(info.value)
    assert "targets.1.sip_uri: sip:a@B.example.com is also targets.0" in text
    assert "dial_in.num_endpoints: 5 endpoints leave no room for dial-out legs" in text
    assert stack.requests_total() == before


@pytest.fixture(scope="module")
def faulty_stack(prefect_server):
    s = start_stack(prefect_server.api_url, fault_duplicate=0.5, fault_reorder=0.5, seed=7)
    yield s
    stop_stack(s)


async def test_duplicated_and_reordered_deliveries_give_the_same_report(faulty_stack):
    c = campaign(
        "sip:a@b.example.com",
        "sip:busy@b.example.com",
        "sip:hangup@b.example.com",
        "sip:noanswer@b.example.com",
        "sip:notfound@b.example.com",
    )
    _state, report = await run(faulty_stack, c)
    deliveries = faulty_stack.emulator.introspect("deliveries")
    assert any(d["result"] == "duplicate" for d in deliveries)
    assert any(d["note"] == "reordered" for d in deliveries)
    assert [t.status for t in report.targets] == ["answered", "busy", "answered", "no_answer", "unreachable"]
    async with httpx.AsyncClient() as http:
        health = (await http.get(faulty_stack.webhook_url.rsplit("/", 1)[0] + "/healthz")).json()
    # The receiver dropped the duplicates; Prefect never saw them twice.
    assert health["stats"]["duplicates"] > 0, health
    assert_nothing_left_behind(faulty_stack, report)


@pytest.fixture(scope="module")
def lossy_stack(prefect_server):
    s = start_stack(prefect_server.api_url, fault_drop=0.3, seed=3)
    yield s
    stop_stack(s)


async def test_dropped_deliveries_still_account_for_every_target(lossy_stack):
    c = campaign(
        *[f"sip:b{i}@b.example.com" for i in range(4)], "sip:busy@b.example.com", ring_timeout_seconds=3
    )
    _state, report = await run(lossy_stack, c)
    dropped = [d for d in lossy_stack.emulator.introspect("deliveries") if d["result"] == "dropped"]
    assert dropped, "the fault flag dropped nothing; pick another seed"
    assert all(t.status in ("answered", "busy", "no_answer", "unknown", "failed") for t in report.targets)
    assert_nothing_left_behind(lossy_stack, report)
