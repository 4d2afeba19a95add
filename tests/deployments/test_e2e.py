"""The three ways the campaign runs, through a real server, `prefect deploy` and a real worker.

Each test starts a run the way a user would (CLI, event, schedule), waits for Prefect to report
it finished, and checks what the user looks at afterwards: the run's state and message, the
results table artifact, and, on the stand-in, that nothing was left switched on.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName, FlowRunFilter
from prefect.client.schemas.objects import FlowRun

from daily_sip.flows.cleanup.heartbeat import HEARTBEAT_SECONDS
from daily_sip.flows.report.naming import clip

from .conftest import QUICK_CAMPAIGN, Deployed, cli, run_adhoc

pytestmark = pytest.mark.timeout(600)
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


async def _deployment_id(name: str) -> UUID:
    async with get_client() as client:
        return (await client.read_deployment_by_name(f"dial-campaign/{name}")).id


async def _wait_for_run(
    deployed: Deployed, deployment: str, within: float = 240, predicate=lambda run: True
) -> FlowRun:
    """The first run of a deployment matching predicate, once it is in a terminal state."""
    dep_id = await _deployment_id(deployment)
    deadline = time.monotonic() + within
    async with get_client() as client:
        while time.monotonic() < deadline:
            runs = await client.read_flow_runs(deployment_filter=DeploymentFilter(id={"any_": [dep_id]}))
            done = [r for r in runs if predicate(r) and r.state and r.state.type.value in TERMINAL]
            if done:
                return done[0]
            await asyncio.sleep(1)
    pytest.fail(
        f"no finished run of {deployment} within {within:.0f} s; worker log:\n{deployed.worker_tail()}"
    )


async def _results_table(run_id: UUID) -> list[dict] | None:
    """The run's results table, or None while it is not published."""
    async with get_client() as client:
        artifacts = await client.read_artifacts(flow_run_filter=FlowRunFilter(id={"any_": [run_id]}))
    table = next((a for a in artifacts if a.type == "table" and (a.key or "").endswith("-results")), None)
    if table is None:
        return None
    return json.loads(table.data) if isinstance(table.data, str) else table.data


def _assert_cleaned_up(deployed: Deployed, flow_run_id: UUID) -> None:
    tag = str(flow_run_id).replace("-", "")[:8]
    assert not [r for r in deployed.stack.rooms() if r["name"].endswith(tag)], "room left behind"
    assert not [leg for leg in deployed.stack.legs() if leg["room"].endswith(tag) and leg["active"]]


async def test_deployments_are_registered_as_declared(deployed):
    async with get_client() as client:
        deployments = await client.read_deployments(
            deployment_filter=DeploymentFilter(
                name=DeploymentFilterName(any_=["weekday-standup", "adhoc", "on-request", "standup-meeting"])
            )
        )
        by_name = {d.name: d for d in deployments}
        assert set(by_name) == {"weekday-standup", "adhoc", "on-request", "standup-meeting"}
        weekly = by_name["weekday-standup"]
        [schedule] = weekly.schedules
        assert (schedule.schedule.cron, schedule.schedule.timezone) == ("55 8 * * 1-5", "Europe/Berlin")
        # The campaign file became the parameter, validated.
        assert weekly.parameters["campaign"]["name"] == "weekday-standup"
        assert len(weekly.parameters["campaign"]["targets"]) == 4
        assert weekly.parameters["credentials_block"] == "daily"
        assert weekly.parameters["webhook_url"] == deployed.stack.webhook_url
        assert all(d.work_pool_name == "daily-sip" for d in deployments)
        meeting = by_name["standup-meeting"]
        assert meeting.global_concurrency_limit.limit == 1
        assert meeting.concurrency_options.collision_strategy == "CANCEL_NEW"
        automations = {a.name: a for a in await client.read_automations()}
    assert "daily.campaign.requested -> dial-campaign/on-request" in automations
    assert "daily.meeting.started -> dial-campaign/standup-meeting" in automations
    trigger = automations["daily.meeting.started -> dial-campaign/standup-meeting"].trigger
    assert trigger.match.model_dump()["prefect.resource.id"] == "daily.room.standup"


async def test_adhoc_run_with_param_completes_with_the_report(deployed):
    t0 = time.monotonic()
    run_id = run_adhoc(QUICK_CAMPAIGN)
    run = await _wait_for_run(deployed, "adhoc", predicate=lambda r: r.id == run_id)
    deployed.record("ad hoc: deployment run -> Completed", time.monotonic() - t0)
    assert run.state.type.value == "COMPLETED", (run.state, deployed.worker_tail())
    assert run.state.message == "1/2 bridges joined; busy 1"
    rows = await _results_table(run_id)
    assert rows is not None, "no results table"
    assert [(r["bridge"], r["status"]) for r in rows] == [
        ("Bridge A", "joined"),
        ("Busy line", "busy"),
    ]
    assert rows[0]["dtmf"] == "12#"
    _assert_cleaned_up(deployed, run_id)
    # The tones reached the call, as the far end (the stand-in) recorded them.
    heard = [
        d["tones"]
        for leg in deployed.stack.legs()
        if leg["room"].endswith(run_id.hex[:8])
        for d in leg["dtmf"]
    ]
    assert heard == ["12#"]


async def test_event_triggers_a_campaign_from_its_payload(deployed):
    campaign = {
        **QUICK_CAMPAIGN,
        "name": "e2e-requested",
        "targets": [{"sip_uri": "sip:requested@e2e.example.com"}],
    }
    t0 = time.monotonic()
    cli(
        "prefect",
        "event",
        "emit",
        "daily.campaign.requested",
        "--resource-id",
        "daily.campaign.e2e",
        "--payload",
        json.dumps({"campaign": campaign}),
        timeout=60,
    )
    run = await _wait_for_run(deployed, "on-request")
    deployed.record("event: emit -> triggered run Completed", time.monotonic() - t0)
    assert run.state.type.value == "COMPLETED", (run.state, deployed.worker_tail())
    assert run.parameters["campaign"]["name"] == "e2e-requested"
    assert run.state.message == "1/1 bridges answered"
    rows = await _results_table(run.id)
    assert rows is not None, "no results table"
    assert [(r["bridge"], r["status"]) for r in rows] == [
        (clip("sip:requested@e2e.example.com", 24), "answered")
    ]
    _assert_cleaned_up(deployed, run.id)


async def test_scheduler_creates_and_runs_the_scheduled_campaign(deployed):
    run = await _wait_for_run(deployed, "e2e-interval", within=300)
    # The worker prefetches runs a few seconds ahead, so a run may start before its slot.
    deployed.record(
        "schedule: run start minus scheduled time", (run.start_time - run.expected_start_time).total_seconds()
    )
    deployed.record("schedule: run start -> Completed", (run.end_time - run.start_time).total_seconds())
    try:
        assert run.auto_scheduled, "the run was not created by the scheduler"
        assert run.state.type.value == "COMPLETED", (run.state, deployed.worker_tail())
        assert run.parameters["campaign"]["name"] == "e2e-scheduled"
        _assert_cleaned_up(deployed, run.id)
    finally:
        async with get_client() as client:
            await client.delete_deployment(await _deployment_id("e2e-interval"))


async def test_cancelling_a_deployed_run_hangs_up_and_removes_its_room(deployed):
    staying = {
        **QUICK_CAMPAIGN,
        "name": "e2e-cancel",
        "targets": [{"sip_uri": "sip:stays-1@e2e.example.com"}, {"sip_uri": "sip:stays-2@e2e.example.com"}],
        "after_answer": {"mode": "stay", "max_seconds": 600},
    }
    run_id = run_adhoc(staying)
    tag = run_id.hex[:8]
    deadline = time.monotonic() + 120
    while not [
        leg
        for leg in deployed.stack.legs()
        if leg["room"].endswith(tag) and leg["active"] and leg["state"] == "answered"
    ]:
        assert time.monotonic() < deadline, f"no leg answered; worker log:\n{deployed.worker_tail()}"
        await asyncio.sleep(0.5)
    t0 = time.monotonic()
    cli("prefect", "flow-run", "cancel", str(run_id), timeout=60)
    run = await _wait_for_run(deployed, "adhoc", within=120, predicate=lambda r: r.id == run_id)
    deployed.record("cancel: flow-run cancel -> Cancelled, cleaned up", time.monotonic() - t0)
    assert run.state.type.value == "CANCELLED", (run.state, deployed.worker_tail())
    _assert_cleaned_up(deployed, run_id)


def _process_of_flow_run(run_id: UUID) -> int | None:
    """The pid of the process a worker started for this flow run (its environment names the run)."""
    wanted = f"PREFECT__FLOW_RUN_ID={run_id}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if wanted in (proc / "environ").read_bytes().split(b"\0"):
                return int(proc.name)
        except OSError:
            continue
    return None


async def test_a_deployed_run_killed_with_kill_9_is_cleaned_up_and_reported_by_its_worker(deployed):
    # The worker notices its flow-run process died, marks the run Crashed and runs the on_crashed
    # hook: the hook cleans up from the run's ledger and publishes the per-target report.
    staying = {
        **QUICK_CAMPAIGN,
        "name": "e2e-killed",
        "targets": [{"sip_uri": "sip:killed-1@e2e.example.com"}, {"sip_uri": "sip:killed-2@e2e.example.com"}],
        "after_answer": {"mode": "stay", "max_seconds": 600},
    }
    run_id = run_adhoc(staying)
    tag = run_id.hex[:8]
    deadline = time.monotonic() + 120
    while (
        len(
            [
                leg
                for leg in deployed.stack.legs()
                if leg["room"].endswith(tag) and leg["active"] and leg["state"] == "answered"
            ]
        )
        < 2
    ):
        assert time.monotonic() < deadline, f"legs not answered; worker log:\n{deployed.worker_tail()}"
        await asyncio.sleep(0.5)
    await asyncio.sleep(HEARTBEAT_SECONDS + 1)  # one heartbeat puts both answers in the ledger
    pid = _process_of_flow_run(run_id)
    assert pid, f"no process runs flow run {run_id}"
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    run = await _wait_for_run(deployed, "adhoc", within=120, predicate=lambda r: r.id == run_id)
    assert run.state.type.value == "CRASHED", (run.state, deployed.worker_tail())
    while True:
        try:
            _assert_cleaned_up(deployed, run_id)
            break
        except AssertionError:
            assert time.monotonic() - t0 < 60, f"not cleaned up; worker log:\n{deployed.worker_tail()}"
            await asyncio.sleep(0.5)
    deployed.record("kill -9 of the flow-run process -> Crashed, cleaned up", time.monotonic() - t0)
    for _ in range(60):  # the hook publishes after its cleanup
        if (rows := await _results_table(run_id)) is not None:
            break
        await asyncio.sleep(0.5)
    else:
        pytest.fail(f"no results artifact for the killed run; worker log:\n{deployed.worker_tail()}")
    assert [(r["bridge"], r["status"]) for r in rows] == [
        (clip("sip:killed-1@e2e.example.com", 24), "answered"),
        (clip("sip:killed-2@e2e.example.com", 24), "answered"),
    ], rows
