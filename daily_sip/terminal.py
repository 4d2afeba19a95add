"""What `daily-sip run` draws in the terminal: the live board while it runs, the results once after.

Uses rich (https://rich.readthedocs.io): a `Live` table redrawn on every change of a leg, fed by
the flow's board (`daily_sip.flows.report.board.watchers`); while it is up, Prefect's console log lines
are held back to warnings (they still reach the Prefect API), else they would tear the drawing.
Without a terminal (a pipe, CI) there is no live drawing: the log lines tell the story.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

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
    # Cells carry user text (bridge names, SIP reasons): as Text, a "[" in them is never read as markup.
    return Text("" if value is None else str(value), style=style or "")


def board_table(rows: list[dict[str, str]], title: str = "Live board") -> Table:
    table = Table(title=_cell(title), title_justify="left")
    for col in ("#", "bridge", "now", "since", "attempt", "note"):
        table.add_column(col, overflow="fold")
    for r in rows:
        style = "bold green" if r.get("on call") else None
        table.add_row(*(_cell(r[c]) for c in ("#", "bridge", "now", "since", "attempt", "note")), style=style)
    return table


def results_table(report) -> Table:
    """The final results, one row per bridge, status coloured and with its icon."""
    from daily_sip.flows.report.model import ICONS

    table = Table(title=_cell(f"{report.campaign}: {report.message}"), title_justify="left")
    for col in ("#", "bridge", "status", "SIP", "attempts", "on call (s)", "DTMF", "detail"):
        table.add_column(col, overflow="fold")
    for t in report.targets:
        table.add_row(
            _cell(t.index + 1),
            _cell(t.display_name or t.sip_uri),
            _cell(f"{ICONS.get(t.status, '')} {t.status.replace('_', ' ')}", STYLE.get(t.status)),
            _cell(t.sip_code),
            _cell(t.attempts),
            _cell(None if t.seconds_on_call is None else f"{t.seconds_on_call:.1f}"),
            _cell(t.dtmf_sent),
            _cell(t.error or t.detail),
        )
    return table


@contextlib.contextmanager
def live_board(console: Console) -> Iterator[None]:
    """Draw the board while the body runs, if the console is a terminal."""
    from daily_sip.flows.report import board

    if not console.is_terminal:
        yield
        return
    from prefect.logging.handlers import PrefectConsoleHandler

    quieted = [
        (h, h.level)
        for lg in [logging.getLogger(), *logging.root.manager.loggerDict.values()]
        for h in getattr(lg, "handlers", [])
        if isinstance(h, PrefectConsoleHandler)
    ]
    for handler, _ in quieted:
        handler.setLevel(logging.WARNING)
    with Live(board_table([]), console=console, refresh_per_second=4, transient=True) as live:

        def watch(rows: list[dict[str, str]]) -> None:
            live.update(board_table(rows))

        board.watchers.append(watch)
        try:
            yield
        finally:
            board.watchers.remove(watch)
            for handler, level in quieted:
                handler.setLevel(level)


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


def print_past_run(console: Console, flow_run, artifacts) -> None:
    """The report of a finished (or running) campaign: state, results or live board, summary."""
    import json

    from rich.markdown import Markdown

    state = flow_run.state
    said = state.name if state else "no state"
    if state and state.message:
        said += f": {state.message}"
    console.print(Text.assemble((flow_run.name, "bold"), f" ({flow_run.id}): {said}"))
    newest: dict[str, object] = {}
    for a in sorted(artifacts, key=lambda a: a.created):
        newest[a.key or str(a.id)] = a  # the board has many versions: keep the last
    for key, a in newest.items():
        data = json.loads(a.data) if isinstance(a.data, str) and a.type == "table" else a.data
        if a.type == "table" and key.endswith("-results"):
            table = Table(title=_cell(a.description or key), title_justify="left")
            cols = [c for c in (data[0] if data else {}) if c not in ("icon", "sip_uri")]
            for c in cols:
                table.add_column(c, overflow="fold")
            for row in data:
                status = f"{row.get('icon', '')} {row['status']}" if "status" in row else ""
                table.add_row(
                    *[_cell(status if c == "status" else row[c]) for c in cols],
                    style=STYLE.get(row.get("status", ""), None),
                )
            console.print(table)
        elif a.type == "table" and key.endswith("-board") and not any(k.endswith("-results") for k in newest):
            console.print(board_table(data, title=f"Live board: {a.description or ''}"))
        elif a.type == "markdown":
            console.print(Markdown(str(data)))
