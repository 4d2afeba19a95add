"""What the CLI prints in a terminal: tables that fit it, and commands that run as printed."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import get_args

import pytest
from rich.cells import cell_len
from rich.console import Console
from typer.testing import CliRunner

from daily_sip.flows.report.model import ICONS, CampaignReport, Outcome, TargetResult
from daily_sip.terminal import results_table

BIN = Path(sys.executable).parent
OUTCOMES = get_args(Outcome)
# The header row of a results table ("status") or of the board ("now"), with or without a box.
HEADER = re.compile(r"^[\s┃│]*#[\s┃│]+(bridge|target)[\s┃│]+(status|now|bridge)\b")


def test_results_table_prints_every_outcome_and_names_with_brackets_verbatim():
    targets = [
        TargetResult(
            index=i,
            sip_uri=f"sip:{i}@pbx.example.com",
            display_name=f"[Zoom] ops {i} [/]",
            status=status,
            detail=f"why [{status}]",
        )
        for i, status in enumerate(OUTCOMES)
    ]
    report = CampaignReport(campaign="[weekly]", started_at=datetime.now(UTC), targets=targets, required=1)
    console = Console(width=250, record=True, color_system=None)
    console.print(results_table(report))
    text = console.export_text()
    for i, status in enumerate(OUTCOMES):
        assert f"[Zoom] ops {i} [/]" in text
        assert status.replace("_", " ") in text
        assert f"why [{status}]" in text
    assert "[weekly]" in text


LONG = "far end hung up 3.0 s after the last tone; check meeting ID / passcode"


def _campaign() -> CampaignReport:
    """Every outcome once, with the names and reasons a real campaign has (some long)."""
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    targets = []
    for i, status in enumerate(OUTCOMES):
        t = TargetResult(
            index=i,
            sip_uri=f"sip:84512345678.12345{i}@zoomcrc.example.com",
            display_name=None if i == 1 else f"PBX room {i} (wrong PIN)",
            status=status,
            attempts=1 + i % 2,
            sip_code=486 if status == "busy" else None,
            detail=LONG if status == "dropped_after_dtmf" else f"SIP 486 Busy Here ({i})",
            dtmf_sent="1234#" if "dtmf" in status else None,
        )
        if status in ("joined", "answered", "dropped_after_dtmf"):
            t.answered_at, t.stopped_at = start + timedelta(seconds=2), start + timedelta(seconds=12)
            t.seconds_on_call = 10.0
        targets.append(t)
    return CampaignReport(
        campaign="weekday-standup",
        started_at=start,
        finished_at=start + timedelta(seconds=20),
        targets=targets,
        required=3,
    )


def _check_one_line_per_bridge(lines: list[str], report: CampaignReport, width: int) -> None:
    shown = "\n".join(lines)
    assert max(cell_len(line) for line in lines) <= width, shown
    assert [bool(HEADER.search(line)) for line in lines].count(True) == 1, shown  # ONE table
    head = next(i for i, line in enumerate(lines) if HEADER.search(line))
    body = lines[head + 2 : head + 2 + len(report.targets)]  # header, rule, then a line per bridge
    for t, line in zip(report.targets, body, strict=True):
        status = f"{ICONS[t.status]} {t.status.replace('_', ' ')}"
        assert re.match(rf"\s*{t.index + 1}\s", line) and status in line, f"{status!r}:\n{shown}"


@pytest.mark.parametrize("width", [100, 80, 120])
def test_results_table_fits_the_terminal_one_line_per_bridge_statuses_whole(width):
    report = _campaign()
    console = Console(width=width, record=True, color_system=None)
    console.print(results_table(report))
    lines = console.export_text().splitlines()
    _check_one_line_per_bridge(lines, report, width)
    # A reason cut in its column is printed in full under the table (wrapped at words if need be).
    assert LONG in " ".join(line.strip() for line in lines), "\n".join(lines)


def test_report_command_prints_one_table_that_fits_100_columns(monkeypatch):
    """`daily-sip report RUN` with COLUMNS=100, on the artifacts a campaign publishes."""
    from daily_sip import cli, terminal
    from daily_sip.flows.report.timeline import timeline_markdown

    report = _campaign()
    at = iter(report.started_at + timedelta(seconds=s) for s in range(100))
    rows = [t.row() for t in report.targets]
    board = [
        {"#": r["#"], "bridge": r["target"], "now": r["status"], "since": "", "attempt": "1"} for r in rows
    ]
    artifacts = [
        SimpleNamespace(key="weekday-standup-board", type="table", data=json.dumps(board), description="")
        for _ in range(3)
    ] + [
        SimpleNamespace(
            key="weekday-standup-results", type="table", data=json.dumps(rows), description=report.message
        ),
        SimpleNamespace(key="weekday-standup-summary", type="markdown", data=report.summary_markdown()),
        SimpleNamespace(key="weekday-standup-timeline", type="markdown", data=timeline_markdown(report)),
    ]
    for a in artifacts:
        a.created, a.id = next(at), a.key
    state = SimpleNamespace(name="Completed", message=report.message)
    flow_run = SimpleNamespace(name="weekday-standup · 2026-12-01 09:00 UTC", id="0a1b", state=state)

    async def past_run(run: str):
        return flow_run, artifacts

    monkeypatch.setattr(cli, "require_prefect_server", lambda *a, **k: None)
    monkeypatch.setattr(terminal, "past_run", past_run)
    done = CliRunner().invoke(cli.app, ["report", "0a1b"], env={"COLUMNS": "100"})
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    _check_one_line_per_bridge(lines, report, 100)
    assert "Joined after" not in done.output  # the summary's own table of bridges is left out
    assert "Success rule:" in done.output and "what happened when" in done.output


# -- commands printed for the user -------------------------------------------------------------


def printed_commands(text: str, cwd: Path) -> list[tuple[str, Path]]:
    """(the program as printed, the folder it runs in) for every `prefect` or `daily-sip` command
    in `text`, one per line or several joined by `;` / `&&`, `cd` followed; prose is skipped."""
    found = []
    for line in text.splitlines():
        line = line.strip().removesuffix("\\")
        if line.startswith("Next") and ":" in line:
            line = line.split(":", 1)[1]
        for part in line.split(";"):
            where = cwd
            for step in part.strip().strip("()").split("&&"):
                try:
                    words = shlex.split(step, comments=True)
                except ValueError:
                    continue
                if words[:1] == ["cd"] and len(words) == 2:
                    where = where / words[1]
                elif words and Path(words[0]).name in ("prefect", "daily-sip"):
                    found.append((words[0], where))
    return found


def assert_commands_run_as_printed(text: str, cwd: Path, at_least: int) -> None:
    commands = printed_commands(text, cwd)
    assert len(commands) >= at_least, text
    for program, where in commands:
        path = where / program  # a bare name stays relative to the folder: not there, not runnable
        assert path.is_file() and os.access(path, os.X_OK), f"{program!r} does not run from {where}:\n{text}"


def test_command_names_this_installs_script_relative_to_the_current_folder(tmp_path, monkeypatch):
    from daily_sip.terminal import command

    monkeypatch.chdir(BIN.parent.parent)  # the folder holding the virtualenv: the repository root
    venv = BIN.parent.name
    assert command("prefect") == f"{venv}/bin/prefect"
    assert command("daily-sip", run_in="deployments") == f"../{venv}/bin/daily-sip"
    assert command("prefect", run_in=tmp_path) == str(BIN / "prefect")
    monkeypatch.chdir(tmp_path)  # outside it: the whole path
    assert command("prefect") == str(BIN / "prefect")


@pytest.mark.parametrize("where", ["repository root", "elsewhere"])
def test_init_prints_next_steps_that_run_as_printed(tmp_path, where):
    root = BIN.parent.parent if where == "repository root" else tmp_path
    folder = f".init-check-{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    try:
        done = subprocess.run(
            [str(BIN / "daily-sip"), "init", folder],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert (root / folder / "prefect.yaml").is_file()
        assert_commands_run_as_printed(done.stdout, root, at_least=3)
    finally:
        subprocess.run(["rm", "-rf", str(root / folder)], check=False)
