"""The card's sentence in the Prefect UI: a campaign run's steps are task runs, and it has one board.

`daily-sip run` of three bridges against a real Prefect server, the stand-in and the receiver;
then, from the Prefect API, what a user sees on the run's page: its task runs and its artifacts.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
)

CAMPAIGN = {
    "name": "Steps Three",
    "targets": [
        {"sip_uri": "sip:zoom@steps.example.com", "display_name": "Zoom ops"},
        {"sip_uri": "sip:busy@steps.example.com", "display_name": "Busy PBX"},
        {"sip_uri": "sip:webex@steps.example.com", "display_name": "Webex"},
    ],
    "after_answer": {"mode": "hang_up_after", "hold_seconds": 6},
    "redial": {"attempts": 1},
    "success": {"min_answered": 2, "min_answered_fraction": 0},
    "ring_timeout_seconds": 5,
    "ready_timeout_seconds": 5,
}


async def test_a_run_shows_its_steps_as_task_runs_and_one_board(stack, prefect_server, tmp_path):
    campaign = tmp_path / "steps.yaml"
    campaign.write_text(yaml.safe_dump(CAMPAIGN))
    out = tmp_path / "report.json"
    done = await asyncio.to_thread(
        subprocess.run,
        [
            str(Path(sys.executable).parent / "daily-sip"),
            "run",
            str(campaign),
            "--json-out",
            str(out),
            "--webhook-url",
            stack.webhook_url,
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PREFECT_API_URL": prefect_server.api_url},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = json.loads(out.read_text())["flow_run_id"]

    async with get_client() as client:
        task_runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        )
        for _ in range(40):  # the server records task runs from their events, a moment later
            if len(task_runs) >= 6 and all(t.state and t.state.is_final() for t in task_runs):
                break
            await asyncio.sleep(0.5)
            task_runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
            )
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )

    states = {t.name: (t.state.type.value, t.state.message) for t in task_runs}
    assert sorted(states) == sorted(
        ["provision room", "await ready", "dial Zoom ops #1", "dial Busy PBX #1", "dial Webex #1", "clean up"]
    ), states
    assert states["provision room"][0] == "COMPLETED" and states["await ready"][0] == "COMPLETED"
    assert states["dial Zoom ops #1"][0] == "COMPLETED" and states["dial Webex #1"][0] == "COMPLETED"
    # A bridge that did not get in is a failed step, with the reason.
    assert states["dial Busy PBX #1"][0] == "FAILED" and states["dial Busy PBX #1"][1].startswith("busy")
    assert states["clean up"][0] == "COMPLETED" and "deleted room" in states["clean up"][1], states
    # The steps ran in the sentence's order: provision, ready, the dials, clean up.
    by_start = sorted(task_runs, key=lambda t: t.start_time)
    assert [t.name for t in by_start[:2]] == ["provision room", "await ready"]
    assert by_start[-1].name == "clean up"

    keys = Counter(a.key for a in artifacts)
    assert keys["steps-three-board"] == 1, keys  # one board, updated in place
    assert set(keys) <= {f"steps-three-{k}" for k in ("board", "results", "summary", "timeline", "progress")}
    assert len(artifacts) <= 5, keys
    board = next(a for a in artifacts if a.key == "steps-three-board")
    rows = json.loads(board.data) if isinstance(board.data, str) else board.data
    assert [r["now"] for r in rows] == ["✅ answered", "⛔ busy", "✅ answered"], rows
