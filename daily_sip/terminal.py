"""What the CLI draws in the terminal: the live board of `daily-sip run`, the results, past runs.

Uses rich (https://rich.readthedocs.io). Tables fit the terminal's width: a row is one line, a
status is never cut, and what does not fit (a long reason, a long bridge name) is cut with "…"
in its column and, in the results, printed in full under the table.

The live board is a `Live` table redrawn on every change of a leg, fed by the flow's board
(`daily_sip.flows.report.board.watchers`). `Live` redraws in place only if nothing else writes to
the terminal while it is up, so every console log handler is pointed through it for that time:
a warning is printed above the board, INFO lines are held back (the board says the same; they
still reach the Prefect API). Without a terminal (a pipe, CI) there is no live drawing: the log
lines tell the story.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.file_proxy import FileProxy
from rich.live import Live
from rich.table import Table
from rich.text import Text

from daily_sip.flows.report.escape import plain, plain_lines, unmd

STYLE = {
    "joined": "green",
    "answered": "green",
    "busy": "yellow",
    "no_answer": "yellow",
    "dropped_after_dtmf": "red",
    "dtmf_failed": "red",
    "rejected": "red",
    "failed": "red",
    "unreachable": "red",
    "ended_before_answer": "yellow",
    "no_events": "dim",
    "canceled": "dim",
    "unknown": "dim",
}


def _cell(value: object, style: str | None = None) -> Text:
    # Cells carry user text (bridge names, SIP reasons): as Text, a "[" in them is never read as
    # markup, and without control characters no ESC sequence or bidi override reaches the terminal.
    return Text(plain(value), style=style or "")


# -- tables that fit the terminal ----------------------------------------------------------------

FIXED, NAME, REASON = "fixed", "name", "reason"  # how a column gives way when the line is too long
NAME_MAX = 30  # a bridge name longer than this is cut (in full under the results table)
REASON_MIN = 24  # the reason column keeps at least this much before the names give way
GAP = 2  # columns apart: one space of padding and one of (invisible) rule


@dataclass(frozen=True)
class Col:
    key: str
    header: str
    kind: str = FIXED
    justify: str = "left"


class FittedTable:
    """A table as wide as the console it is printed on, one line per row.

    FIXED columns (numbers, times, statuses) are never cut; a NAME column is cut past `NAME_MAX`
    or when the line is too long; the REASON column takes the rest. With `footnotes`, a row whose
    name or reason was cut is printed in full under the table. Sizes are worked out when printed,
    so one object fits any console (a 100-column terminal, a 120-column pipe, a recording test).
    """

    def __init__(
        self,
        columns: list[Col],
        rows: list[dict[str, str]],
        title: str,
        styles: list[str | None] | None = None,
        caption: str | None = None,
        footnotes: bool = False,
    ) -> None:
        self.columns, self.rows, self.title, self.caption = columns, rows, title, caption
        self.styles = styles or [None] * len(rows)
        self.footnotes = footnotes

    def _widths(self, width: int) -> dict[str, int]:
        natural = {
            c.key: max([cell_len(c.header), *(cell_len(r.get(c.key, "")) for r in self.rows)])
            for c in self.columns
        }
        fixed = sum(natural[c.key] for c in self.columns if c.kind == FIXED)
        room = width - fixed - GAP * (len(self.columns) - 1)
        names = [c.key for c in self.columns if c.kind == NAME]
        reasons = [c.key for c in self.columns if c.kind == REASON]
        widths = dict(natural)
        for key in names:
            widths[key] = min(natural[key], NAME_MAX)
        keep = sum(min(natural[k], REASON_MIN) for k in reasons)
        while names and sum(widths[k] for k in names) + keep > room:
            widest = max(names, key=widths.__getitem__)
            if widths[widest] <= 8:
                break
            widths[widest] -= 1
        left = room - sum(widths[k] for k in names)
        for key in reasons:
            widths[key] = max(1, min(natural[key], left // len(reasons)))
        return widths

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        widths = self._widths(options.max_width)
        table = Table(
            title=_cell(self.title),
            title_justify="left",
            caption=_cell(self.caption) if self.caption else None,
            caption_justify="left",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            collapse_padding=True,
            header_style="bold",
        )
        for c in self.columns:
            table.add_column(
                c.header, justify=c.justify, width=widths[c.key], no_wrap=True, overflow="ellipsis"
            )
        cut: list[dict[str, str]] = []
        for row, style in zip(self.rows, self.styles, strict=True):
            table.add_row(*(_cell(row.get(c.key, "")) for c in self.columns), style=style or "")
            if any(
                c.kind != FIXED and cell_len(plain(row.get(c.key, ""))) > widths[c.key] for c in self.columns
            ):
                cut.append(row)
        yield table
        if self.footnotes and cut:
            first = self.columns[0].key
            shown = [c for c in self.columns if c.kind != FIXED]
            for row in cut:
                parts = [plain(row.get(c.key, "")) for c in shown if row.get(c.key, "")]
                yield Text.assemble((f"{plain(row.get(first, ''))}  ", "bold"), ": ".join(parts))


BOARD_COLUMNS = [
    Col("#", "#", justify="right"),
    Col("bridge", "bridge", NAME),
    Col("now", "now"),
    Col("since", "since"),
    Col("attempt", "try", justify="right"),
    Col("note", "note", REASON),
]


def board_table(rows: list[dict[str, str]], title: str = "Live board", caption: str | None = None):
    """The live board: where every bridge is now, one line each (a long note is cut)."""
    styles = ["bold green" if r.get("on call") else None for r in rows]
    return FittedTable(BOARD_COLUMNS, rows, title, styles, caption=caption)


RESULT_COLUMNS = [
    Col("#", "#", justify="right"),
    Col("target", "bridge", NAME),
    Col("shown_status", "status"),
    Col("sip_code", "SIP", justify="right"),
    Col("attempts", "tries", justify="right"),
    Col("on_call", "on call", justify="right"),
    Col("dtmf", "DTMF"),
    Col("detail", "detail", REASON),
]


def results_rows_table(rows: list[dict[str, str]], title: str) -> FittedTable:
    """The results from rows of `TargetResult.row()` or of the results artifact
    (`TargetResult.table_row()`), one line per bridge: status (with its icon) whole, a reason that
    does not fit printed in full under the table."""
    from daily_sip.flows.report.model import ICONS

    shown = []
    for r in rows:
        r = {k: "" if v is None else str(v) for k, v in r.items()}
        status = r.get("status", "")
        on_call = r.get("on_call_s") or r.get("on call")
        shown.append(
            {
                **r,
                "target": r.get("target") or r.get("bridge", ""),
                "sip_code": r.get("sip_code") or r.get("SIP", ""),
                "attempts": r.get("attempts") or r.get("try", ""),
                "shown_status": f"{r.get('icon') or ICONS.get(status, '')} {status.replace('_', ' ')}",
                "on_call": f"{on_call} s" if on_call else "",
            }
        )
    styles = [STYLE.get(r.get("status", "")) for r in rows]
    return FittedTable(RESULT_COLUMNS, shown, title, styles, footnotes=True)


def results_table(report) -> FittedTable:
    """The final results, one row per bridge, status coloured and with its icon."""
    return results_rows_table([t.row() for t in report.targets], f"{report.campaign}: {report.message}")


# -- the live board ------------------------------------------------------------------------------


def fit_board(rows: list[dict[str, str]], room: int) -> tuple[list[dict[str, str]], str | None]:
    """At most `room` rows, so the board never outgrows the screen (`Live` cannot redraw what
    scrolled away). When it must leave rows out, the bridges being dialled, ringing or on the call
    stay, then the ones that finished last, then the next ones waiting; the caption counts the rest.
    """
    from daily_sip.flows.report.board import DIALLING, REDIAL, RINGING, WAITING

    if len(rows) <= room:
        return rows, None

    def phase(r: dict[str, str]) -> str:
        return r["now"].split(" ", 1)[-1]

    active = [i for i, r in enumerate(rows) if r.get("on call") or phase(r) in (DIALLING, RINGING)]
    waiting = [i for i, r in enumerate(rows) if phase(r) in (WAITING, REDIAL) and i not in active]
    done = [i for i in range(len(rows)) if i not in active and i not in waiting]
    done.sort(key=lambda i: rows[i].get("since", ""), reverse=True)
    keep = set((active + done + waiting)[: max(room - 1, 1)])  # a line for the caption
    left = [i for i in range(len(rows)) if i not in keep]
    counts = {
        "on the call or ringing": sum(i in active for i in left),
        "done": sum(i in done for i in left),
        "waiting": sum(i in waiting for i in left),
    }
    said = ", ".join(f"{n} {what}" for what, n in counts.items() if n)
    return [rows[i] for i in sorted(keep)], f"{len(left)} more not shown: {said}"


def _prefect_logging_set_up() -> None:
    """Have Prefect configure its logging now. It does so on the first import of `prefect.main`,
    which `daily-sip run` reaches only when it imports the flow, inside the board: the handlers it
    would create then could not be pointed through the board."""
    try:
        from prefect.logging.configuration import ensure_logging_setup
    except ImportError:  # older Prefect: importing its entry point sets logging up
        import prefect.main  # noqa: F401
    else:
        ensure_logging_setup()


class _AboveTheBoard:
    """A log handler's rich console while the board is up: the handler's line is rendered as it
    would be (its highlighter, theme, no markup), then printed through the `Live`, above the board.

    Giving the handler's console the `Live`'s stream proxy does not do: rich unwraps the proxy
    (`rich_proxied_file`) and writes to the terminal under the board, which leaves a copy behind.
    """

    def __init__(self, own: Console, live: Live) -> None:
        self._own, self._live = own, live

    def print(self, *objects: object, **kwargs: object) -> None:
        with self._own.capture() as captured:
            self._own.print(*objects, **kwargs)
        self._live.console.print(Text.from_ansi(captured.get().removesuffix("\n")), soft_wrap=True)

    def __getattr__(self, name: str) -> object:
        return getattr(self._own, name)


class _WarningsOnly(logging.Filter):
    """INFO lines of the console handlers are held back while the board is up (a handler's level
    would not do: Prefect resets it when it sets its logging up again)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


def _to_terminal(stream: object) -> bool:
    if isinstance(stream, FileProxy):
        return False
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):
        return False


@contextlib.contextmanager
def _logs_above(live: Live) -> Iterator[None]:
    """Every log handler that writes to the terminal writes through `live` (above the board)
    and only warnings, until the block ends."""
    loggers = [logging.getLogger(), *logging.root.manager.loggerDict.values()]
    handlers = {id(h): h for lg in loggers for h in getattr(lg, "handlers", [])}.values()
    held = _WarningsOnly()
    undo = []
    for h in handlers:
        own = getattr(h, "console", None)
        if isinstance(own, Console):  # Prefect's console handler, rich's RichHandler
            h.console = _AboveTheBoard(own, live)  # type: ignore[attr-defined]
            undo.append(lambda h=h, own=own: setattr(h, "console", own))
        elif isinstance(h, logging.StreamHandler) and _to_terminal(h.stream):
            old = h.setStream(FileProxy(live.console, h.stream))
            undo.append(lambda h=h, old=old: h.setStream(old))
        else:
            continue
        h.addFilter(held)
        undo.append(lambda h=h: h.removeFilter(held))
    try:
        yield
    finally:
        for step in reversed(undo):
            step()


@contextlib.contextmanager
def live_board(console: Console) -> Iterator[None]:
    """Draw the board while the body runs, if the console is a terminal: one board, redrawn in
    place; gone when the body ends (the results are printed after it, once)."""
    from daily_sip.flows.report import board

    if not console.is_terminal:
        yield
        return
    _prefect_logging_set_up()

    def table(rows: list[dict[str, str]]):
        shown, caption = fit_board(rows, console.size.height - 6)  # title, rules, header, caption
        return board_table(shown, caption=caption)

    with (
        Live(table([]), console=console, refresh_per_second=4, transient=True) as live,
        _logs_above(live),
    ):

        def watch(rows: list[dict[str, str]]) -> None:
            live.update(table(rows))

        board.watchers.append(watch)
        try:
            yield
        finally:
            board.watchers.remove(watch)


class RunNotFound(LookupError):
    """No flow run with that id or name on the Prefect server."""


async def past_run(run: str) -> tuple[object, list[object]]:
    """A flow run (by id or by its name) and its artifacts, from the current Prefect server."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterName
    from prefect.exceptions import ObjectNotFound

    async with get_client() as client:
        try:
            flow_run = await client.read_flow_run(UUID(run))
        except (ValueError, ObjectNotFound):
            found = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[run])), limit=1
            )
            if not found:
                raise RunNotFound(run) from None
            flow_run = found[0]
        artifacts = await client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id]))
        )
    return flow_run, artifacts


def _without_tables(markdown: str) -> str:
    """The summary without its table of bridges: the results table above has them, one line each."""
    return "\n".join(line for line in markdown.splitlines() if not line.lstrip().startswith("|"))


def print_past_run(console: Console, flow_run, artifacts) -> None:
    """The report of a finished (or running) campaign: state, one table (the results, or the live
    board while it runs), the summary and the timeline; as wide as the console."""
    import json

    from rich.markdown import Markdown

    newest: dict[str, object] = {}
    for a in sorted(artifacts, key=lambda a: a.created):
        newest[a.key or str(a.id)] = a  # the board has many versions: keep the last
    results = any(k.endswith("-results") and a.type == "table" for k, a in newest.items())
    state = flow_run.state
    said = state.name if state else "no state"
    if state and state.message and not results:  # else the results table's title says it
        said += f": {state.message}"
    # What comes from the server is data: no control characters reach the terminal, and the
    # markdown escapes of table cells and descriptions (`escape.md`) are undone for reading.
    console.print(Text.assemble((plain(flow_run.name), "bold"), plain(f" ({flow_run.id}): {said}")))
    for key, a in newest.items():
        data = json.loads(a.data) if isinstance(a.data, str) and a.type == "table" else a.data
        if a.type == "table":
            rows = [{k: unmd(v) for k, v in row.items()} for row in data or []]
        if a.type == "table" and key.endswith("-results"):
            console.print(results_rows_table(rows, unmd(a.description or key)), "")
        elif a.type == "table" and key.endswith("-board") and not results:
            console.print(board_table(rows, title=f"Live board: {unmd(a.description)}"))
        elif a.type == "markdown":
            text = plain_lines(data)
            console.print(Markdown(_without_tables(text) if results else text))


# -- commands the CLI prints ---------------------------------------------------------------------


def command(name: str, run_in: str | os.PathLike[str] | None = None) -> str:
    """How a line printed for the user calls this installation's `name` (`prefect`, `daily-sip`),
    so that it runs as shown with or without the virtualenv activated, in this terminal or another.

    It is the script next to the running interpreter: a path relative to the current directory
    when it is inside it (`.venv/bin/prefect`, run from the repository root), else the absolute
    path; with `run_in`, relative to that folder instead (a line that `cd`s there first). The bare
    name only if there is no such script (then it was found on PATH).

    Example (from a repository whose virtualenv is `.venv`):
        command("prefect") == ".venv/bin/prefect"
        command("prefect", run_in="deployments") == "../.venv/bin/prefect"
    """
    exe = Path(sys.executable).parent / name
    if not exe.is_file():
        return name
    here = Path.cwd()
    exe = Path(os.path.abspath(exe))
    start = Path(os.path.abspath(here / run_in)) if run_in is not None else here
    if exe.is_relative_to(here) and start.is_relative_to(here):
        shown = os.path.relpath(exe, start)
        shown = shown if os.sep in shown else os.path.join(".", shown)  # never looked up on PATH
    else:
        shown = str(exe)
    return shlex.quote(shown)
