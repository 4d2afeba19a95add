"""A deployed run picked up past its campaign's start window dials nothing and says why.

Through a real server, `prefect deploy` and a real `process` worker: the run is created the way a
late schedule leaves it (Scheduled, its time 10 minutes ago), the worker picks it up at once, and
the stand-in must see no request at all from it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter
from prefect.states import Scheduled

from .conftest import QUICK_CAMPAIGN, Deployed
from .test_e2e import TERMINAL, _deployment_id

pytestmark = pytest.mark.timeout(600)


async def _quiet_stand_in(deployed: Deployed) -> None:
    """Remove the starter's interval deployment and let a run of it already going finish: its
    Daily calls are not ours (deleting a deployment deletes its runs that have not started)."""
    async with get_client() as client:
        await client.delete_deployment(await _deployment_id("e2e-interval"))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            busy = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(state={"type": {"any_": ["RUNNING", "PENDING"]}})
            )
            if not busy:
                return
            await asyncio.sleep(1)
    pytest.fail(f"runs still going after 300 s; worker log:\n{deployed.worker_tail()}")


async def test_a_run_past_its_start_window_dials_nothing_and_says_when_it_was_due(deployed):
    await _quiet_stand_in(deployed)
    requests_before = deployed.stack.requests_total()
    due = datetime.now(UTC) - timedelta(minutes=10)
    campaign = {**QUICK_CAMPAIGN, "name": "late-standup", "start_window_seconds": 60}
    async with get_client() as client:
        run = await client.create_flow_run_from_deployment(
            await _deployment_id("adhoc"),
            parameters={"campaign": campaign},
            state=Scheduled(scheduled_time=due),
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            run = await client.read_flow_run(run.id)
            if run.state and run.state.type.value in TERMINAL:
                break
            await asyncio.sleep(1)
        else:
            pytest.fail(f"the late run did not finish; worker log:\n{deployed.worker_tail()}")
        artifacts = await client.read_artifacts(flow_run_filter=FlowRunFilter(id={"any_": [run.id]}))

    assert run.state.type.value == "FAILED", (run.state, deployed.worker_tail())
    message = run.state.message or ""
    assert "too late to start" in message, message
    assert f"due {due:%Y-%m-%d %H:%M:%S} UTC" in message, message
    assert "started " in message and "start window 1 min" in message, message
    # Not one call to Daily: no credentials check, no room, no dial-out.
    assert deployed.stack.requests_total() == requests_before, deployed.stack.emulator.introspect("requests")
    tag = str(run.id).replace("-", "")[:8]
    assert not [r for r in deployed.stack.rooms() if r["name"].endswith(tag)]
    summaries = [a for a in artifacts if a.type == "markdown" and "too late to start" in str(a.data)]
    summary = summaries[0] if summaries else None
    assert summary is not None, [(a.key, a.type) for a in artifacts]
    assert "not dialled" in str(summary.data)
