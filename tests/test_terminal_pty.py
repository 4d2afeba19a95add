"""The live board of `daily-sip run`, drawn in a real pseudo-terminal: one board, redrawn in place.

A small script (below) does what `daily-sip run` does around the flow: the same imports, the
board on a stderr console, Prefect's logging set up only once the flow module is imported (as
`_run_flow` does), the campaign's `Board` changing with a log line per change as the flow logs
them, a warning from another logger in between, then the results table once. It runs under
pexpect in a pty of a known size; pyte, a terminal emulator, replays the bytes, and the test reads
its screen and scrollback, as a user would see them in tmux.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pexpect
import pyte
import pytest

COLS, ROWS = 160, 40
# The header row of the board ("now") and of the results ("status"), with or without a box.
HEADER = re.compile(r"^[\s┃│]*#[\s┃│]+bridge[\s┃│]+(now|status)\b")
WARNING = "heartbeat check: this warning is shown once, above the board"

SCRIPT = r"""
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

import daily_sip.cli  # noqa: F401  what `daily-sip run` has imported when it starts the board
from daily_sip.terminal import live_board, results_table

go, n_targets = Path(sys.argv[1]), int(sys.argv[2])
with live_board(Console(stderr=True)):
    # `_run_flow` imports the flow here, inside the board: Prefect sets up its logging now.
    from daily_sip.flows.dial_campaign import dial_campaign  # noqa: F401
    from daily_sip.flows.report.board import ANSWERED, DIALLING, ENDED, ON_CALL, RINGING, Board
    from daily_sip.flows.report.model import CampaignReport, TargetResult

    targets = [
        TargetResult(index=i, sip_uri=f"sip:bridge-{i}@pbx.example.com", display_name=f"Bridge {i}")
        for i in range(n_targets)
    ]
    report = CampaignReport(campaign="pty-check", started_at=datetime.now(UTC), targets=targets, required=1)
    # The flow's run logger (`get_run_logger()` in a flow run), with what it adds to every record.
    run = {"flow_run_name": "pty-check", "flow_name": "dial-campaign", "flow_run_id": "0"}
    board = Board(report, logging.LoggerAdapter(logging.getLogger("prefect.flow_runs"), run))
    for i, t in enumerate(targets[:6]):
        for phase, note in ((DIALLING, ""), (RINGING, ""), (ANSWERED, ""), (ON_CALL, "hanging up after 5 s")):
            t.attempts = 1
            board.change(t, phase, note)
            time.sleep(0.15)
        if i == 2:
            logging.getLogger("daily_sip.cleanup").warning("WARNING_TEXT")
    board.change(targets[0], RINGING, "CHECKPOINT")
    while not go.exists():  # the test reads the screen now
        time.sleep(0.05)
    for t in targets[:6]:
        t.status, t.detail = "answered", "hung up after 5 s"
        board.change(t, ENDED)
        time.sleep(0.15)
Console().print(results_table(report))
print("SCRIPT DONE")
""".replace("WARNING_TEXT", WARNING)


def _lines(screen: pyte.HistoryScreen) -> list[str]:
    """Everything the terminal shows or has scrolled away: scrollback first, then the screen."""
    old = ["".join(line[x].data for x in range(screen.columns)) for line in screen.history.top]
    return [line.rstrip() for line in [*old, *screen.display]]


def _read(child: pexpect.spawn, stream: pyte.ByteStream, until: bytes | None, seconds: float) -> bytes:
    """Feed the terminal what the script writes, for `seconds` or until `until` appears or it ends
    (the board redraws a few times a second, so output never pauses while it is up)."""
    seen, deadline = b"", time.monotonic() + seconds
    while time.monotonic() < deadline and not (until and until in seen):
        try:
            chunk = child.read_nonblocking(65536, timeout=0.2)
        except pexpect.TIMEOUT:
            continue
        except pexpect.EOF:
            break
        stream.feed(chunk)
        seen += chunk
    return seen


@pytest.mark.parametrize("n_targets", [9, 60], ids=["9 bridges", "60 bridges, taller than the screen"])
def test_live_board_redraws_in_place_in_a_real_terminal(tmp_path: Path, n_targets: int) -> None:
    script = tmp_path / "board.py"
    script.write_text(SCRIPT)
    go = tmp_path / "go"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "DAILY_"))
        and k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
    }
    env.update(
        TERM="xterm-256color",
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_LOGGING_TO_API_ENABLED="false",
        DO_NOT_TRACK="1",
    )
    screen = pyte.HistoryScreen(COLS, ROWS, history=10000)
    stream = pyte.ByteStream(screen)
    child = pexpect.spawn(
        sys.executable,
        [str(script), str(go), str(n_targets)],
        dimensions=(ROWS, COLS),
        env=env,
        cwd=str(tmp_path),
        echo=False,
    )
    try:
        out = _read(child, stream, b"CHECKPOINT", 120)
        assert b"CHECKPOINT" in out, out.decode(errors="replace")[-3000:]
        _read(child, stream, None, 1.5)  # the board's next redraws
        during = _lines(screen)
        shown = "\n".join(during)
        # One board on the screen, none left behind in the scrollback.
        assert [m.group(1) for line in during if (m := HEADER.search(line))] == ["now"], shown
        assert sum("Live board" in line for line in during) == 1, shown
        assert sum(WARNING in line for line in during) == 1, shown  # a warning is shown, above it
        assert not any("| INFO" in line for line in during), shown  # the board says what INFO lines would

        go.touch()
        _read(child, stream, None, 60)  # to the end of the script
        child.expect(pexpect.EOF, timeout=30)
        after = _lines(screen)
        shown = "\n".join(after)
        assert any("SCRIPT DONE" in line for line in after), shown
        # The board is gone (transient); the results table is printed once, whole.
        assert sum("Live board" in line for line in after) == 0, shown
        assert [m.group(1) for line in after if (m := HEADER.search(line))] == ["status"], shown
        assert sum(WARNING in line for line in after) == 1, shown
    finally:
        if child.isalive():
            child.terminate(force=True)
