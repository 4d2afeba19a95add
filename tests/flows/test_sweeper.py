"""A `daily-sip run` killed with kill -9 leaves nothing for good: the sweeper or the next campaign
cleans up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
import yaml

from daily_sip.flows.cleanup.heartbeat import HEARTBEAT_SECONDS
from daily_sip.flows.cleanup.ledger import load_ledger
from daily_sip.flows.sweeper import sweep_ledgers

from .test_dial_campaign import campaign, run


def start_cli_run(tmp_path, stack, **spec) -> subprocess.Popen:
    targets = [{"sip_uri": "sip:a@b.example.com"}, {"sip_uri": "sip:c@b.example.com"}]
    body = {
        "name": "killed",
        "targets": targets,
        "after_answer": {"mode": "stay", "max_seconds": 600},
        "success": {"min_answered_fraction": 0},
        "ready_timeout_seconds": 10,
        **spec,
    }
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(body))
    return subprocess.Popen(
        [sys.executable, "-m", "daily_sip.cli", "run", str(path), "--webhook-url", stack.webhook_url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def legs_answered(stack, room_prefix: str, n: int, wait: float = 120) -> list[dict]:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        up = [
            leg
            for leg in stack.legs()
            if leg["room"].startswith(room_prefix) and leg["active"] and leg["state"] == "answered"
        ]
        if len(up) >= n:
            return up
        await asyncio.sleep(0.2)
    pytest.fail(f"{n} legs never came up in {room_prefix}*")


def kill9(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


async def run_id_of(room: str) -> str:
    """The flow run whose tag ends the created room's name."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        runs = await client.read_flow_runs(limit=200)
    tag = room.rsplit("-", 1)[-1]
    return next(str(r.id) for r in runs if str(r.id).replace("-", "").startswith(tag))


async def test_kill_9_of_a_run_in_a_created_room_is_finished_by_the_sweeper(stack, tmp_path):
    proc = start_cli_run(tmp_path, stack, name="swept")
    try:
        legs = await legs_answered(stack, "swept-", 2)
        await asyncio.sleep(HEARTBEAT_SECONDS + 1)  # one heartbeat records the answered targets
    finally:
        kill9(proc)
    room = legs[0]["room"]
    run_id = await run_id_of(room)
    assert await load_ledger(run_id) is not None

    # Right after the kill the ledger is still fresh: a live-looking run is never touched.
    first = await sweep_ledgers()
    assert run_id in first.live
    assert room in {r["name"] for r in stack.rooms()}

    await asyncio.sleep(3)
    report = await sweep_ledgers(grace_seconds=2)
    assert run_id in report.finished, report
    assert room not in {r["name"] for r in stack.rooms()}
    assert not [leg for leg in stack.legs() if leg["room"] == room and leg["active"]]
    assert await load_ledger(run_id) is None
    # The dead run's per-target report is published on its flow run after all.
    rows = await results_artifact(run_id)
    assert [r["status"] for r in rows] == ["answered", "answered"], rows
    # And the run no longer shows RUNNING forever.
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        assert (await client.read_flow_run(run_id)).state.is_crashed()


async def results_artifact(run_id: str) -> list[dict]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    # Keys are per campaign (`<campaign>-results`).
    [artifact] = [a for a in artifacts if (a.key or "").endswith("-results")]
    data = artifact.data
    return json.loads(data) if isinstance(data, str) else data


async def test_next_campaign_into_a_borrowed_room_restores_a_killed_runs_originals(stack, tmp_path):
    async with httpx.AsyncClient(headers=stack.emulator.headers()) as http:
        r = await http.post(f"{stack.emulator.base_url}/rooms", json={"name": "borrowed-k9"})
        assert r.status_code == 200, r.text
    proc = start_cli_run(tmp_path, stack, room="borrowed-k9")
    try:
        await legs_answered(stack, "borrowed-k9", 2)
    finally:
        kill9(proc)
    killed_at = time.monotonic()
    leaked = next(r for r in stack.rooms() if r["name"] == "borrowed-k9")
    assert leaked["sip_enabled"] and leaked["enable_dialout"] and leaked["legs_up"] == 2

    c = campaign(
        "sip:e@b.example.com",
        room="borrowed-k9",
        deadline_seconds=120,
        after_answer={"mode": "hang_up_after", "hold_seconds": 0.5},
    )
    state, report = await run(stack, c)
    assert state.is_completed(), state.message
    first_leg = min(t.connected_at for t in report.targets)
    # The killed run's room lock expired within its lease (30 s), not 5 minutes.
    assert time.monotonic() - killed_at < 60
    assert first_leg is not None
    room = next(r for r in stack.rooms() if r["name"] == "borrowed-k9")
    # Back to how it was before the killed run: SIP, dial-out and room start all off, nobody up.
    assert not room["sip_enabled"] and not room["enable_dialout"] and not room["allow_room_start"], room
    assert room["legs_up"] == 0


def test_sweep_command_reports_and_exits_zero_when_nothing_is_pending(stack):
    done = subprocess.run(
        [sys.executable, "-m", "daily_sip.cli", "sweep"], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    assert "swept" in done.stdout and "live run(s) left alone" in done.stdout


async def test_a_run_whose_worker_dies_stops_itself_and_cleans_up(stack, tmp_path):
    """A worker killed with kill -9 leaves its flow-run child unsupervised; the child stops itself."""
    body = {
        "name": "orphan",
        "targets": [{"sip_uri": "sip:a@b.example.com"}],
        "after_answer": {"mode": "stay", "max_seconds": 600},
        "success": {"min_answered_fraction": 0},
    }
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(body))
    worker = spawn_worker(f"{sys.executable} -m daily_sip.cli run {path} --webhook-url {stack.webhook_url}")
    child = None
    try:
        try:
            [leg] = await legs_answered(stack, "orphan-", 1)
            child = child_of(worker.pid)
        finally:
            kill9(worker)
        room = leg["room"]
        for _ in range(100):
            if room not in {r["name"] for r in stack.rooms()}:
                break
            await asyncio.sleep(0.2)
        else:
            pytest.fail("the orphaned run kept its room for 20 s after its worker died")
        assert not [leg for leg in stack.legs() if leg["room"] == room and leg["active"]]
    finally:
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)


def spawn_worker(command: str) -> subprocess.Popen:
    """A stand-in for a worker: a parent process whose child runs the flow with the variable a
    worker sets for its flow-run processes."""
    env = {**os.environ, "PREFECT__FLOW_RUN_ID": "00000000-0000-4000-8000-000000000000"}
    return subprocess.Popen(
        ["sh", "-c", f"{command} & wait"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )


def child_of(pid: int) -> int | None:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return int(found[0]) if found else None


def big_report(bridges: int):
    from datetime import UTC, datetime, timedelta

    from daily_sip.flows.report.model import CampaignReport, LegEvent, TargetResult

    t0 = datetime.now(UTC)
    targets = [
        TargetResult(
            index=i,
            sip_uri=f"sip:93912345{i:03d}.884422@zoomcrc.example.com",
            display_name=f"Regional office {i:02d} (Zoom)",
            bridge="zoom",
            status="joined" if i % 3 else "busy",
            sip_code=200 if i % 3 else 486,
            attempts=1,
            detail="still connected after the join confirmation time",
            dialed_at=t0,
            answered_at=t0 + timedelta(seconds=2),
            dtmf_script="884422#",
        )
        for i in range(bridges)
    ]
    phases = ("dialling", "ringing", "answered")
    timeline = [[LegEvent(at=t0, phase=p, note=f"{p} of bridge {i}") for p in phases] for i in range(bridges)]
    return CampaignReport(
        campaign="monday-bridges", started_at=t0, targets=targets, required=1, timeline=timeline
    )


@pytest.mark.parametrize("bridges", [12, 80])
async def test_a_campaign_of_many_bridges_keeps_its_ledger_fresh(prefect_server, bridges):
    # A ledger over Prefect's Variable limit could not be refreshed: the sweeper would take
    # the live run for dead after its grace period and hang up every bridge.
    import uuid

    from daily_sip.flows.cleanup.ledger import Ledger, drop_ledger, report_snapshot, save_ledger

    run_id = str(uuid.uuid4())
    ledger = Ledger(
        flow_run_id=run_id,
        room="monday",
        user_prefix="dsf-x",
        created_room=True,
        report=report_snapshot(big_report(bridges)),
    )
    await save_ledger(ledger)
    first = (await load_ledger(run_id)).alive_at
    await asyncio.sleep(0.05)
    await save_ledger(ledger)
    stored = await load_ledger(run_id)
    await drop_ledger(run_id)
    assert stored.alive_at > first
    if bridges == 12:  # a crash report still names every bridge's outcome and why
        assert [(t["status"], t["detail"]) for t in stored.report["targets"]] == [
            ("joined" if i % 3 else "busy", "still connected after the join confirmation time")
            for i in range(12)
        ]
    elif stored.report is not None:  # too many for detail: each bridge's outcome at least
        assert [t["status"] for t in stored.report["targets"]] == [
            "joined" if i % 3 else "busy" for i in range(80)
        ]
