"""Names and Daily's free text are data in every sink, even where validation cannot reach them
(Daily's error messages, artifacts written by an older version or by anyone with API access):
the markdown the Prefect UI renders, the terminal of `daily-sip run` and `daily-sip report`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from markdown_it import MarkdownIt
from rich.console import Console
from typer.testing import CliRunner

from daily_sip.flows.report.board import Board
from daily_sip.flows.report.escape import md, plain, unmd
from daily_sip.flows.report.model import CampaignReport, TargetResult
from daily_sip.flows.report.naming import artifact_key
from daily_sip.flows.report.timeline import timeline_markdown
from daily_sip.terminal import results_table

HEADING = "Ops\n## ✅ succeeded: 4/4 joined\n"
TITLE = "\x1b]0;pwned\x07"
LINK = "[x](javascript:alert(1))"
BIDI = "evil\u202etxt.exe"
C1 = "\x9b31mred"
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069]")
RENDER = MarkdownIt("commonmark").enable("table")


def hostile_report() -> CampaignReport:
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    targets = [
        TargetResult(index=0, sip_uri="sip:a@x.example.com", display_name=LINK, status="joined"),
        TargetResult(index=1, sip_uri="sip:b@x.example.com", display_name="a | b", status="busy"),
        TargetResult(
            index=2,
            sip_uri="sip:c@x.example.com",
            display_name=BIDI,
            status="failed",
            error=f"{TITLE}SIP 500\r\n## ✅ all good {C1} <img src=x onerror=alert(1)>",
        ),
    ]
    report = CampaignReport(campaign=HEADING + TITLE, started_at=start, targets=targets, required=3, room="r")
    report.finished_at = start + timedelta(seconds=30)
    # Text from Daily and from cleanup, in the verdict line itself.
    report.error = f"{LINK}\n# forged {TITLE}"
    report.notes = [f"<img src=x onerror=alert(1)> {C1}"]
    report.cleanup_pending = [f"hang up s1 (a | b {BIDI})"]
    report.timeline = [[] for _ in targets]
    return report


def test_the_summary_has_one_heading_the_real_verdict_and_no_link_or_html():
    report = hostile_report()
    out = RENDER.render(report.summary_markdown())
    assert re.findall(r"<h\d>", out) == ["<h2>"], out
    assert "did not succeed" in re.search(r"<h2>(.*?)</h2>", out).group(1)
    assert "<a " not in out and "<img" not in out and not CONTROL.search(out), out
    rows = re.findall(r"<tr>(.*?)</tr>", out, re.S)[1:]
    assert [r.count("<td>") for r in rows] == [10, 10, 10], out  # "a | b" is one cell
    assert LINK in out and "a | b" in out


def test_table_cells_and_descriptions_render_as_the_text_they_hold():
    """The Prefect UI (v1) renders each table cell as a markdown document of its own."""
    report = hostile_report()
    board = Board(report, logger=SimpleNamespace(info=lambda *a: None))
    cells = [c for t in report.targets for c in t.table_row().values()]
    cells += [c for row in board.artifact_rows() for c in row.values()]
    cells += [board.headline(md), report.message_as(md), report.rule_as(md)]
    for cell in cells:
        out = RENDER.render(cell)
        assert "<a " not in out and "<img" not in out and "<h" not in out and "<ul>" not in out, (cell, out)
        assert not CONTROL.search(out), (cell, out)
    assert RENDER.renderInline(report.targets[0].table_row()["bridge"]) == LINK
    for start in ("- item", "+ item", "1. item", "---", "> quote", "# head"):
        assert RENDER.render(md(start)) == f"<p>{start.replace('>', '&gt;')}</p>\n", start


def test_the_timeline_is_one_heading_and_one_code_block_whatever_the_names():
    report = hostile_report()
    report.targets[1].display_name = "```\n# closed"
    out = RENDER.render(timeline_markdown(report))
    assert out.count("<h3>") == 1 and out.count("<pre>") == 1 and "<h1>" not in out, out


def test_keys_of_different_non_latin_names_differ_and_stay_valid():
    names = ["Погода", "Новости", "天气", "天氣", "ニュース", "a" * 40 + "x", "a" * 40 + "y"]
    keys = [artifact_key(n, "results") for n in names]
    assert len(set(keys)) == len(names), keys
    assert all(re.fullmatch(r"[a-z0-9-]+", k) for k in keys), keys
    assert artifact_key("Weekday standup", "results") == "weekday-standup-results"  # history kept


def test_results_in_the_terminal_carry_no_control_characters():
    console = Console(width=200, record=True, color_system=None, force_terminal=False)
    console.print(results_table(hostile_report()))
    text = console.export_text()
    assert not CONTROL.search(text), repr(text)
    assert LINK in text and "a | b" in text and "evil" in text


def test_run_prints_its_verdict_lines_without_control_characters(capsys):
    from daily_sip import cli

    report = hostile_report()
    report.error = f"Daily said {TITLE}\x07 stop"
    state = SimpleNamespace(type=SimpleNamespace(value="FAILED"), is_completed=lambda: False)
    cli._finish(state, report, None, None)
    out = capsys.readouterr().out
    assert not CONTROL.search(out), repr(out)
    assert "FAILED: " in out


def test_report_command_shows_names_as_written_and_no_control_characters(monkeypatch):
    from daily_sip import cli, terminal

    report = hostile_report()
    rows = [t.table_row() for t in report.targets]
    artifacts = [
        SimpleNamespace(
            key="ops-results", type="table", data=json.dumps(rows), description=report.message_as(md)
        ),
        SimpleNamespace(key="ops-summary", type="markdown", data=report.summary_markdown(), description=""),
        # An artifact not written by this version: raw control characters in markdown.
        SimpleNamespace(key="ops-notes", type="markdown", data=f"# {TITLE}{BIDI}\n\n{C1}", description=""),
    ]
    for i, a in enumerate(artifacts):
        a.created, a.id = datetime(2026, 12, 1, 9, 0, i, tzinfo=UTC), a.key
    state = SimpleNamespace(name="Failed", message=f"{TITLE} forged")
    flow_run = SimpleNamespace(name=f"Ops{TITLE}\n## ✅ · 2026-12-01", id="0a1b", state=state)

    async def past_run(run: str):
        return flow_run, artifacts

    monkeypatch.setattr(cli, "require_prefect_server", lambda *a, **k: None)
    monkeypatch.setattr(terminal, "past_run", past_run)
    done = CliRunner().invoke(cli.app, ["report", "0a1b"], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    assert not CONTROL.search(done.output), repr(done.output)
    assert LINK in done.output and "a | b" in done.output  # as written: the escapes are undone
    assert "\\[" not in done.output and "\\|" not in done.output


def test_plain_and_unmd():
    assert plain(HEADING + TITLE + BIDI + C1) == "Ops ## ✅ succeeded: 4/4 joined ]0;pwnedeviltxt.exe31mred"
    assert plain("👨\u200d💻 x\u200cy") == "👨\u200d💻 x\u200cy"  # joiners are part of text
    assert unmd(md(LINK + " | #1 - 2. *x* _y_ ~z~ <b>")) == LINK + " | #1 - 2. *x* _y_ ~z~ <b>"
