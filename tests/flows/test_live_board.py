"""The live board: while bridges stay on the call, Prefect shows who is on it, and progress moves."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort

from daily_sip.flows.campaign.model import Campaign
from daily_sip.flows.dial_campaign import dial_campaign
from daily_sip.flows.report.timeline import render_png


async def latest(key: str):
    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    return found[0] if found else None


def rows_of(artifact) -> list[dict]:
    return json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data


async def test_board_shows_two_bridges_on_the_call_while_a_stay_campaign_runs(stack, tmp_path):
    c = Campaign.model_validate(
        {
            "name": "Live Board Stay",
            "targets": [
                {"sip_uri": "sip:zoom@live.example.com", "display_name": "Zoom 👨‍💻"},
                {"sip_uri": "sip:webex@live.example.com", "display_name": "Webex"},
                {"sip_uri": "sip:busy@live.example.com", "display_name": "Busy PBX"},
            ],
            "after_answer": {"mode": "stay", "max_seconds": 60},
            "success": {"min_answered": 2, "min_answered_fraction": 0},
            "ring_timeout_seconds": 5,
            "ready_timeout_seconds": 5,
        }
    )
    run = asyncio.create_task(dial_campaign(campaign=c, webhook_url=stack.webhook_url, return_state=True))
    board = progress = None
    try:
        for _ in range(120):  # up to 60 s
            await asyncio.sleep(0.5)
            board = await latest("live-board-stay-board")
            if board and sum(r["now"].endswith("on call") for r in rows_of(board)) == 2:
                break
        else:
            raise AssertionError(f"board never showed two bridges on the call: {board and rows_of(board)}")
        rows = {r["bridge"]: r for r in rows_of(board)}
        assert rows["Zoom 👨‍💻"]["now"].endswith("on call") and rows["Webex"]["now"].endswith("on call")
        assert rows["Webex"]["note"].startswith("staying until the far end")
        assert "2 on the call (Zoom 👨‍💻, Webex)" in board.description
        # Progress counts bridges answered or finished, not only finished ones.
        await asyncio.sleep(1.5)  # the board republishes at most once a second
        progress = await latest("live-board-stay-progress")
        assert progress.data > 0, progress
    finally:
        # The far ends hang up; the campaign ends on its own.
        async with httpx.AsyncClient(timeout=10) as http:
            for leg in stack.legs():
                if leg["active"] and leg["destination"].split("@")[0] in ("sip:zoom", "sip:webex"):
                    await http.post(f"{stack.emulator.root}/_emulator/legs/{leg['id']}/hangup")
        state = await asyncio.wait_for(run, 60)
    assert state.is_completed(), state.message
    final = rows_of(await latest("live-board-stay-board"))
    assert [r["now"] for r in final] == ["✅ answered", "✅ answered", "⛔ busy"]
    assert (await latest("live-board-stay-progress")).data == 100.0
    summary = await latest("live-board-stay-summary")
    assert "at least 2 of 3 bridges must join (answer, for bridges without DTMF); met with 2" in summary.data
    assert "| ⛔ | Busy PBX | busy |" in summary.data

    # What happened when: one lane per bridge, in the Prefect UI and as a picture file.
    timeline = (await latest("live-board-stay-timeline")).data
    for lane in ("Zoom 👨‍💻 |", "Webex", "Busy PBX"):
        assert lane in timeline
    # Each lane ends with its outcome (the reasons are in the results table beside it).
    lanes = {line.split("|")[0].strip(): line for line in timeline.splitlines() if "|" in line}
    assert "█" in lanes["Webex"] and lanes["Webex"].rstrip().endswith("| answered"), timeline
    assert lanes["Busy PBX"].rstrip().endswith("| busy"), timeline
    report = await state.aresult(raise_on_failure=False)
    phases = [e.phase for e in report.timeline[0]]
    assert phases[:3] == ["dialling", "ringing", "answered"] and phases[-1] == "ended"
    pytest.importorskip("matplotlib")
    png = render_png(report, tmp_path / "t.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Any past run's report, from Prefect, in the terminal.
    done = await asyncio.to_thread(
        subprocess.run,
        [str(Path(sys.executable).parent / "daily-sip"), "report", str(state.state_details.flow_run_id)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Live Board Stay" in done.stdout and "2/3 bridges answered" in done.stdout
    assert "Busy PBX" in done.stdout and "met with 2" in done.stdout
