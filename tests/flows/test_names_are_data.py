"""Names are data, never markup: a campaign whose names try to forge the report, run against the
stand-in through `daily-sip run`, then read back as a user meets it (the artifacts from the Prefect
API rendered as the Prefect UI renders them, and `daily-sip report` in a terminal).

The Prefect UI renders markdown artifacts, artifact descriptions and every text cell of a table
artifact as markdown (UI v1: `p-markdown-renderer` per cell), so each is rendered here with
markdown-it (CommonMark plus GFM tables) and the HTML checked: no link, no image, no HTML, no
extra heading or table cell.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from markdown_it import MarkdownIt
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from daily_sip.flows.dial_campaign import dial_campaign
from daily_sip.flows.report.naming import campaign_key

LINK = "[x](javascript:alert(1))"
NAME = f"Погода {LINK} | <b>#1</b>"
NAMES = [LINK, "pipe | cell", "**bold** `code` <img src=x onerror=alert(1)>", "# ✅ succeeded: 4/4 joined"]
CAMPAIGN = {
    "name": NAME,
    "targets": [
        {"sip_uri": "sip:ok-1@names.example.com", "display_name": NAMES[0]},
        {"sip_uri": "sip:busy@names.example.com", "display_name": NAMES[1]},
        {"sip_uri": "sip:ok-3@names.example.com", "display_name": NAMES[2]},
        {"sip_uri": "sip:ok-4@names.example.com", "display_name": NAMES[3]},
    ],
    "after_answer": {"mode": "hang_up_after", "hold_seconds": 0.5},
    "ring_timeout_seconds": 5,
    "ready_timeout_seconds": 5,
}
RENDER = MarkdownIt("commonmark").enable("table")


def html(markdown: str) -> str:
    out = RENDER.render(markdown)
    assert "<a " not in out and "href=" not in out and "<img" not in out and "<b>" not in out, out
    return out


async def artifacts_of(run_id: str) -> list:
    async with get_client() as client:
        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )


def daily_sip(*args: str, api_url: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "daily-sip"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PREFECT_API_URL": api_url, "COLUMNS": "200"},
    )


async def test_names_cannot_forge_the_report_in_any_artifact_or_terminal(stack, prefect_server, tmp_path):
    path = tmp_path / "names.yaml"
    path.write_text(yaml.safe_dump(CAMPAIGN, allow_unicode=True))
    out = tmp_path / "report.json"
    done = await asyncio.to_thread(
        daily_sip,
        "run",
        str(path),
        "--json-out",
        str(out),
        "--webhook-url",
        stack.webhook_url,
        api_url=prefect_server.api_url,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # one bridge was busy: did not succeed
    report = json.loads(out.read_text())
    run_id = report["flow_run_id"]
    artifacts = {a.key: a for a in await artifacts_of(run_id)}

    # Keys: valid, and this name's own: another Cyrillic name with the same Latin part differs.
    key = campaign_key(NAME)
    assert re.fullmatch(r"[a-z0-9-]+-[0-9a-f]{8}", key) and key != campaign_key(
        NAME.replace("Погода", "Ветер")
    )
    assert {f"{key}-{k}" for k in ("summary", "results", "timeline", "board")} <= set(artifacts), artifacts

    # The summary: one heading, the real verdict; the table has a row of 10 cells per bridge.
    summary = html(artifacts[f"{key}-summary"].data)
    headings = re.findall(r"<h\d>(.*?)</h\d>", summary)
    assert len(headings) == 1 and "did not succeed" in headings[0] and "✅ succeeded" not in headings[0], (
        summary
    )
    rows = re.findall(r"<tr>(.*?)</tr>", summary, re.S)[1:]
    assert len(rows) == 4 and all(row.count("<td>") == 10 for row in rows), summary
    for name in NAMES:  # each name shown as written (HTML-escaped by the renderer)
        shown = name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        assert shown in summary, (name, summary)
    # The timeline: one heading, the lanes in one code block.
    timeline = html(artifacts[f"{key}-timeline"].data)
    assert timeline.count("<h3>") == 1 and timeline.count("<pre>") == 1 and "<h1>" not in timeline, timeline
    # Every cell of the table artifacts and every description, as the UI renders them.
    for a in artifacts.values():
        html(a.description or "")
        if a.type == "table":
            for row in json.loads(a.data):
                for cell in row.values():
                    cell_html = html(str(cell))
                    assert "<h1>" not in cell_html and "<ul>" not in cell_html, (cell, cell_html)
    results = json.loads(artifacts[f"{key}-results"].data)
    assert [RENDER.renderInline(r["bridge"]) for r in results][:2] == [LINK, "pipe | cell"]

    # The terminal: names as written, no control character; `daily-sip report` the same.
    assert LINK in done.stdout and "pipe | cell" in done.stdout and "\\[" not in done.stdout
    shown = await asyncio.to_thread(daily_sip, "report", run_id, api_url=prefect_server.api_url, timeout=60)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert LINK in shown.stdout and "pipe | cell" in shown.stdout, shown.stdout
    assert "\\[" not in shown.stdout and "\\|" not in shown.stdout, shown.stdout
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", shown.stdout)


async def test_a_name_that_would_add_lines_or_terminal_codes_is_refused_before_any_call(
    stack, prefect_server
):
    """Through the Prefect API too (a deployment's parameters): the flow refuses the name."""
    before = stack.requests_total()
    for name in ("Ops\n## ✅ succeeded: 4/4 joined", "t\x1b]0;pwned\x07", "bidi\u202eoverride"):
        state = await dial_campaign(
            campaign={**CAMPAIGN, "name": name}, webhook_url=stack.webhook_url, return_state=True
        )
        assert state.is_failed(), state
        assert "control characters" in str(state.message) + repr(await state.aresult(raise_on_failure=False))
    assert stack.requests_total() == before  # nothing was asked of Daily
