"""The in-process worker's one suspension watch still suspends the run it was asked to.

Prefect's flow engine watches every deployment run for "suspend this run" with a thread, an
event loop, an API client and an events subscription of its own; `daily-sip worker` replaces
that with one shared observer (`daily_sip.suspension_watch`). Against a real Prefect server:
a run marked Suspended through the API reaches that run's request, and only that run's.
"""

from __future__ import annotations

import asyncio

import prefect.flow_engine as engine
import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.states import Running, Suspended

from daily_sip.suspension_watch import shared_suspension_watch

FlowRunSuspensionRequest = pytest.importorskip("prefect._flow_run_suspension").FlowRunSuspensionRequest


@flow
def placeholder() -> None:
    """Never run: only its flow runs' states are moved."""


async def test_one_shared_watch_suspends_exactly_the_run_marked_suspended(prefect_server):
    async with get_client() as client:
        runs = [await client.create_flow_run(placeholder, state=Running()) for _ in range(2)]
        per_run = engine.observe_flow_run_suspension
        async with shared_suspension_watch() as shared:
            assert shared and engine.observe_flow_run_suspension is not per_run
            requests = [FlowRunSuspensionRequest() for _ in runs]
            with (
                engine.observe_flow_run_suspension(runs[0].id, requests[0]),
                engine.observe_flow_run_suspension(runs[1].id, requests[1]),
            ):
                await client.set_flow_run_state(runs[0].id, Suspended(timeout_seconds=300), force=True)
                for _ in range(100):
                    if requests[0].is_requested():
                        break
                    await asyncio.sleep(0.1)
                assert requests[0].is_requested()
                assert requests[0].get_state().name == "Suspended"
                assert not requests[1].is_requested()
        assert engine.observe_flow_run_suspension is per_run  # the worker leaves Prefect as it was
