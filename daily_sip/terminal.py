"""What `daily-sip run` draws in the terminal: the live board while it runs, the results once after.

Uses rich (https://rich.readthedocs.io): a `Live` table redrawn on every change of a leg, fed by
the flow's board (`daily_sip.flows.board.watchers`); while it is up, Prefect's console log lines
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

STYLE = {"answered": "green", "busy": "yellow", "no_answer": "yellow", "rejected": "red", "failed": "red",
         "canceled": "dim", "unknown": "dim"}


def board_table(rows: list[dict[str, str]], title: str = "Live board") -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("#", "bridge", "now", "since", "attempt", "note"):
        table.add_column(col, overflow="fold")
    for r in rows:
        style = "bold green" if r.get("on call") else None
        table.add_row(r["#"], r["bridge"], r["now"], r["since"], r["attempt"], r["note"], style=style)
    return table


def results_table(report) -> Table:
    """The final results, one row per bridge, status coloured and with its icon."""
    from daily_sip.flows.report import ICONS

    table = Table(title=f"{report.campaign}: {report.message}", title_justify="left")
    for col in ("#", "bridge", "status", "SIP", "attempts", "on call (s)", "DTMF", "detail"):
        table.add_column(col, overflow="fold")
    for t in report.targets:
        table.add_row(
            str(t.index + 1), t.display_name or t.sip_uri,
            f"[{STYLE.get(t.status, '')}]{ICONS.get(t.status, '')} {t.status.replace('_', ' ')}[/]",
            "" if t.sip_code is None else str(t.sip_code), str(t.attempts),
            "" if t.seconds_on_call is None else f"{t.seconds_on_call:.1f}", t.dtmf_sent or "",
            t.error or t.detail or "",
        )
    return table


@contextlib.contextmanager
def live_board(console: Console) -> Iterator[None]:
    """Draw the board while the body runs, if the console is a terminal."""
    from daily_sip.flows import board

    if not console.is_terminal:
        yield
        return
    from prefect.logging.handlers import PrefectConsoleHandler

    quieted = [(h, h.level) for lg in [logging.getLogger(), *logging.root.manager.loggerDict.values()]
               for h in getattr(lg, "handlers", []) if isinstance(h, PrefectConsoleHandler)]
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
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[run])), limit=1)
            if not found:
                raise RunNotFound(run) from None
            flow_run = found[0]
        artifacts = await client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id])))
    return flow_run, artifacts


def print_past_run(console: Console, flow_run, artifacts) -> None:
    """The report of a finished (or running) campaign: state, results or live board, summary."""
    import json

    from rich.markdown import Markdown

    state = flow_run.state
    console.print(f"[bold]{flow_run.name}[/] ({flow_run.id}): {state.name if state else 'no state'}"
                  f"{': ' + state.message if state and state.message else ''}")
    newest: dict[str, object] = {}
    for a in sorted(artifacts, key=lambda a: a.created):
        newest[a.key or str(a.id)] = a  # the board has many versions: keep the last
    for key, a in newest.items():
        data = json.loads(a.data) if isinstance(a.data, str) and a.type == "table" else a.data
        if a.type == "table" and key.endswith("-results"):
            table = Table(title=a.description or key, title_justify="left")
            cols = [c for c in (data[0] if data else {}) if c not in ("icon", "sip_uri")]
            for c in cols:
                table.add_column(c, overflow="fold")
            for row in data:
                status = f"{row.get('icon', '')} {row['status']}" if "status" in row else ""
                table.add_row(*[status if c == "status" else str(row[c]) for c in cols],
                              style=STYLE.get(row.get("status", ""), None))
            console.print(table)
        elif a.type == "table" and key.endswith("-board") and not any(k.endswith("-results") for k in newest):
            console.print(board_table(data, title=f"Live board: {a.description or ''}"))
        elif a.type == "markdown":
            console.print(Markdown(str(data)))
