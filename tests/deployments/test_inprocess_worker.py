"""`daily-sip worker`: many campaigns in one worker process, and what happens when it stops or dies.

A real `daily-sip worker` takes deployed runs from an in-process work pool on the session's
Prefect server; the stand-in plays Daily, the receiver turns its webhooks into events. The tests
check what an operator sees: runs finishing with their reports, a cancel reaching only its own
campaign, a stopped worker cleaning up, and a killed one cleaned up by the sweeper.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client

from tests.conftest import stop_process
from tests.flows.conftest import CampaignStack, start_stack, stop_stack

from .conftest import BIN, QUICK_CAMPAIGN, cli

pytestmark = pytest.mark.timeout(600)
POOL = "inproc-test"
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}
STAYING = {
    **QUICK_CAMPAIGN,
    "after_answer": {"mode": "stay", "max_seconds": 600},
    "targets": [{"sip_uri": "sip:stays-1@w.example.com"}, {"sip_uri": "sip:stays-2@w.example.com"}],
}


class Worker:
    def __init__(self, tmp: Path, env: dict[str, str], *options: str) -> None:
        self.log = tmp / f"worker-{time.monotonic_ns()}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "daily-sip"), "worker", "--pool", POOL, *options],
                cwd=tmp,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture(scope="module")
def pool(prefect_server, tmp_path_factory) -> Iterator[tuple[CampaignStack, Path, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("inproc")
    stack = start_stack(prefect_server.api_url)
    cli(
        "daily-sip",
        "setup",
        "--api-key",
        stack.emulator.api_key,
        "--api-url",
        stack.emulator.base_url,
        "--webhook-secret",
        os.environ["DAILY_WEBHOOK_SECRET"],
        "--webhook-url",
        stack.webhook_url,
        "--work-pool",
        POOL,
        "--in-process",
    )
    asyncio.run(_deploy_adhoc(stack.webhook_url))
    # The worker knows Daily only through the credentials block, as in production.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DAILY_API_KEY", "DAILY_API_URL", "DAILY_WEBHOOK_SECRET")
    }
    env.update(PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_WORKER_PREFETCH_SECONDS="5", PYTHONUNBUFFERED="1")
    try:
        yield stack, tmp, env
    finally:
        stop_stack(stack)


async def _deploy_adhoc(webhook_url: str) -> None:
    from daily_sip.deployments.definitions import by_name
    from daily_sip.deployments.serve import build_deployment

    (adhoc,) = by_name(["adhoc"])
    deployment = await build_deployment(adhoc, webhook_url=webhook_url)
    deployment.name = "adhoc-inproc"
    await deployment.apply(work_pool_name=POOL)


@pytest.fixture
def worker(pool) -> Iterator[Worker]:
    _, tmp, env = pool
    w = Worker(tmp, env)
    yield w
    stop_process(w.proc)


async def _submit(campaign: dict) -> UUID:
    from prefect.deployments import run_deployment

    return (
        await run_deployment("dial-campaign/adhoc-inproc", parameters={"campaign": campaign}, timeout=0)
    ).id


async def _final(run_id: UUID, worker: Worker, within: float = 180):
    deadline = time.monotonic() + within
    async with get_client() as client:
        while time.monotonic() < deadline:
            run = await client.read_flow_run(run_id)
            if run.state and run.state.type.value in TERMINAL:
                return run
            await asyncio.sleep(0.5)
    pytest.fail(f"run {run_id} not final within {within:.0f} s; worker log:\n{worker.tail()}")


async def _answered_legs(stack: CampaignStack, run_id: UUID, n: int, worker: Worker) -> None:
    deadline = time.monotonic() + 120
    while len(_live_legs(stack, run_id)) < n:
        assert time.monotonic() < deadline, f"legs not answered; worker log:\n{worker.tail()}"
        await asyncio.sleep(0.3)


def _live_legs(stack: CampaignStack, run_id: UUID) -> list[dict]:
    return [
        leg
        for leg in stack.legs()
        if leg["room"].endswith(run_id.hex[:8]) and leg["active"] and leg["state"] == "answered"
    ]


def _room_of(stack: CampaignStack, run_id: UUID) -> list[dict]:
    return [r for r in stack.rooms() if r["name"].endswith(run_id.hex[:8])]


async def test_campaigns_share_the_worker_process_and_a_cancel_reaches_only_its_own(pool, worker):
    stack = pool[0]
    quick = [await _submit({**QUICK_CAMPAIGN, "name": f"shared-{i}"}) for i in range(3)]
    staying = [await _submit({**STAYING, "name": f"staying-{i}"}) for i in range(2)]
    for run_id in staying:
        await _answered_legs(stack, run_id, 2, worker)
    t0 = time.monotonic()
    cli("prefect", "flow-run", "cancel", str(staying[0]), timeout=60)
    cancelled = await _final(staying[0], worker, within=60)
    assert cancelled.state.type.value == "CANCELLED", (cancelled.state, worker.tail())
    assert "cancelled on request" in (cancelled.state.message or ""), cancelled.state.message
    print(f"cancel -> Cancelled and cleaned up in {time.monotonic() - t0:.1f} s")
    assert not _room_of(stack, staying[0]) and not _live_legs(stack, staying[0])
    # Its neighbour in the same process is untouched: both bridges still on the call.
    assert len(_live_legs(stack, staying[1])) == 2
    for run_id in quick:
        run = await _final(run_id, worker)
        assert run.state.type.value == "COMPLETED", (run.state, worker.tail())
        # Every run was executed by this one worker process.
        assert str(run.infrastructure_pid).split(":")[1] == str(worker.proc.pid), run.infrastructure_pid
        assert not _room_of(stack, run_id)
    async with get_client() as client:
        await client.set_flow_run_state(staying[1], _cancelling(), force=True)
    assert (await _final(staying[1], worker, within=60)).state.type.value == "CANCELLED"


async def test_a_campaign_holding_its_calls_frees_its_place_in_the_workers_limit(pool):
    """``--limit 1``: the second campaign starts once the first has started its calls, while
    the first still holds its bridges (the limit counts campaigns starting their calls)."""
    stack, tmp, env = pool
    worker = Worker(tmp, env, "--limit", "1")
    try:
        first = await _submit({**STAYING, "name": "limit-first"})
        second = await _submit({**STAYING, "name": "limit-second"})
        await _answered_legs(stack, first, 2, worker)
        await _answered_legs(stack, second, 2, worker)
        assert len(_live_legs(stack, first)) == 2  # both campaigns on their calls at once
        async with get_client() as client:
            for run_id in (first, second):
                await client.set_flow_run_state(run_id, _cancelling(), force=True)
        for run_id in (first, second):
            assert (await _final(run_id, worker, within=60)).state.type.value == "CANCELLED"
            assert not _room_of(stack, run_id) and not _live_legs(stack, run_id)
    finally:
        stop_process(worker.proc)


def _cancelling():
    from prefect.states import Cancelling

    return Cancelling()


async def test_sigterm_stops_the_worker_after_its_campaigns_hung_up_and_reported(pool, worker):
    stack = pool[0]
    run_id = await _submit({**STAYING, "name": "stopped-worker"})
    await _answered_legs(stack, run_id, 2, worker)
    await asyncio.sleep(3)  # the answers' webhooks reach the flow
    os.killpg(worker.proc.pid, signal.SIGTERM)
    assert worker.proc.wait(120) == 0, worker.tail()
    run = await _final(run_id, worker, within=30)
    assert run.state.type.value == "CRASHED", (run.state, worker.tail())
    assert not _room_of(stack, run_id) and not _live_legs(stack, run_id), worker.tail()
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with get_client() as client:  # this run's only: the shared server holds many more
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    results = sorted(
        (a for a in artifacts if a.flow_run_id == run_id and (a.key or "").endswith("-results")),
        key=lambda a: a.created,
    )
    assert results, "the stopped campaign published no results table"
    rows = json.loads(results[-1].data) if isinstance(results[-1].data, str) else results[-1].data
    assert [r["status"] for r in rows] == ["answered", "answered"], rows


async def test_a_worker_killed_with_kill_9_leaves_its_campaigns_to_the_sweeper(pool, worker):
    from daily_sip.flows.cleanup.heartbeat import HEARTBEAT_SECONDS
    from daily_sip.flows.sweeper import sweep_ledgers

    stack = pool[0]
    run_id = await _submit({**STAYING, "name": "killed-worker"})
    await _answered_legs(stack, run_id, 2, worker)
    await asyncio.sleep(HEARTBEAT_SECONDS + 1)  # one heartbeat puts both answers in the ledger
    os.killpg(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait(10)
    assert len(_live_legs(stack, run_id)) == 2  # nothing in the dead process hung up
    await asyncio.sleep(3)
    report = await sweep_ledgers(grace_seconds=2)
    assert str(run_id) in report.finished, report
    assert not _room_of(stack, run_id) and not _live_legs(stack, run_id)
    async with get_client() as client:
        run = await client.read_flow_run(run_id)
    assert run.state.type.value == "CRASHED", run.state


async def test_a_killed_workers_campaign_is_cleaned_up_by_a_peer_within_90_s(pool, worker):
    """Exposure bound: kill -9 with legs up; the other worker's own sweep hangs them up, deletes
    the room and marks the run Crashed, with no operator action."""
    stack, tmp, env = pool
    run_id = await _submit({**STAYING, "name": "exposed"})
    await _answered_legs(stack, run_id, 2, worker)
    peer = Worker(tmp, env)
    try:
        await asyncio.sleep(5)  # the peer is up and sweeping
        os.killpg(worker.proc.pid, signal.SIGKILL)
        died = time.monotonic()
        worker.proc.wait(10)
        while _live_legs(stack, run_id) or _room_of(stack, run_id):
            assert time.monotonic() - died < 120, f"still exposed; peer log:\n{peer.tail()}"
            await asyncio.sleep(0.5)
        exposure = time.monotonic() - died
        print(f"\nexposure after kill -9 of a worker: {exposure:.1f} s")
        assert exposure <= 90, f"legs up / room left {exposure:.0f} s after the worker died"
        deadline = time.monotonic() + 30
        async with get_client() as client:
            while (run := await client.read_flow_run(run_id)).state.type.value != "CRASHED":
                assert time.monotonic() < deadline, run.state
                await asyncio.sleep(0.5)
        assert "found dead by the sweeper" in (run.state.message or ""), run.state
    finally:
        stop_process(peer.proc)
