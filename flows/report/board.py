"""The live board: where every bridge is right now, as a log line per change and a table artifact.

Each change of a leg (dialling, ringing, answered, DTMF sent, on call, ended + reason, redial
scheduled) logs one human line naming the bridge (ringing, on call and hanging up at DEBUG),
and the board table artifact
(``<campaign>-board``) is updated in place with who is on the call now: one artifact per run, not
a version per change. Updates are coalesced (at most one write per ``MIN_PUBLISH_INTERVAL``) so a
burst of changes costs one Prefect API call; the last state is always written. The progress
artifact counts bridges *settled*: those that answered (on the call or done) or finished, so a
campaign whose bridges stay on the call reads 100 % once they are all up, not 0 %.

Anyone in the same process can watch it too (`daily-sip run` draws it in the terminal):

    >>> from daily_sip.flows.report import board
    >>> board.watchers.append(lambda rows: None)  # called with the rows after every change
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from daily_sip.flows.report.escape import cell, md, plain
from daily_sip.flows.report.model import ICONS, CampaignReport, LegEvent, TargetResult
from daily_sip.flows.report.naming import artifact_key, bridge_label, clip

# An operator glancing at the UI sees a change within this; each write is an API call and an
# event on the Prefect server (at one a second they were a large share of its load).
MIN_PUBLISH_INTERVAL = 5.0

# Phases a bridge goes through; a phase in ON_CALL means the bridge is in the room now.
WAITING, DIALLING, RINGING, ANSWERED, DTMF_SENT, ON_CALL, HANGING_UP, ENDED, REDIAL = (
    "waiting",
    "dialling",
    "ringing",
    "answered",
    "DTMF sent",
    "on call",
    "hanging up",
    "ended",
    "redial scheduled",
)
ON_CALL_PHASES = (ANSWERED, DTMF_SENT, ON_CALL, HANGING_UP)
# Phases the board, the timeline and the dial step's own state show: their log lines are DEBUG
# (each INFO line is a row the Prefect server stores; a campaign's log keeps dialling, answered,
# DTMF sent, redial and ended per bridge).
QUIET_PHASES = (RINGING, ON_CALL, HANGING_UP)
PHASE_ICONS = {
    WAITING: "⏳",
    DIALLING: "📞",
    RINGING: "🔔",
    ANSWERED: "✅",
    DTMF_SENT: "🔢",
    ON_CALL: "🟢",
    HANGING_UP: "👋",
    REDIAL: "🔁",
}

# In-process observers, called with the board rows after every change (e.g. the terminal view).
watchers: list[Callable[[list[dict[str, str]]], None]] = []


@dataclass
class Line:
    phase: str = WAITING
    note: str = ""
    since: datetime = field(default_factory=lambda: datetime.now(UTC))


class Board:
    """One campaign's live state per bridge; `Dialer` calls `change` at every step of a leg."""

    def __init__(self, report: CampaignReport, logger: Any, progress_id: UUID | None = None) -> None:
        self.report = report
        self.logger = logger
        self.progress_id = progress_id
        self.board_id: UUID | None = None
        self.key = artifact_key(report.campaign, "board")
        self.lines = [Line() for _ in report.targets]
        report.timeline = [[] for _ in report.targets]
        self._dirty = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._shown_board: tuple[list[dict[str, str]], str] | None = None
        self._shown_settled = 0  # the progress artifact is created at 0

    @classmethod
    async def open(cls, report: CampaignReport, logger: Any) -> Board:
        """A board with its progress and board artifacts created, every bridge waiting.

        Artifacts are a view: an overloaded Prefect API (500) costs the view, never the campaign.
        """
        from prefect.artifacts import acreate_progress_artifact

        progress_id = None
        with contextlib.suppress(Exception):
            progress_id = await acreate_progress_artifact(
                0.0,
                key=artifact_key(report.campaign, "progress"),
                description=f"{md(report.campaign)}: bridges answered or finished",
            )
        board = cls(report, logger, progress_id)
        await board.publish()
        return board

    # -- what the dialler reports ------------------------------------------------------------

    def change(self, result: TargetResult, phase: str, note: str = "") -> None:
        """Record a bridge's new phase, log one line about it, and have the board republished."""
        line = self.lines[result.index]
        line.phase, line.note, line.since = phase, note, datetime.now(UTC)
        shown_note = note or (self._outcome(result) if phase == ENDED else "")
        self.report.timeline[result.index].append(LegEvent(at=line.since, phase=phase, note=shown_note))
        attempt = f" (attempt {result.attempts})" if result.attempts > 1 else ""
        shown = phase if phase != ENDED else f"ended: {self._outcome(result)}"
        log = self.logger.debug if phase in QUIET_PHASES else self.logger.info
        log("%s: %s%s%s", bridge_label(result), plain(shown), f", {plain(note)}" if note else "", attempt)
        self._changed()

    @staticmethod
    def _outcome(result: TargetResult) -> str:
        why = result.error or result.detail
        return f"{result.status.replace('_', ' ')}" + (f" ({why})" if why else "")

    # -- what is shown -----------------------------------------------------------------------

    @property
    def on_call(self) -> list[str]:
        return [
            bridge_label(t)
            for t, line in zip(self.report.targets, self.lines, strict=True)
            if line.phase in ON_CALL_PHASES
        ]

    def counts(self) -> dict[str, int]:
        on_call = sum(line.phase in ON_CALL_PHASES for line in self.lines)
        ended = sum(line.phase == ENDED for line in self.lines)
        ringing = sum(line.phase in (DIALLING, RINGING) for line in self.lines)
        return {
            "on the call": on_call,
            "ringing": ringing,
            "waiting": sum(line.phase in (WAITING, REDIAL) for line in self.lines),
            "done": ended,
            "settled": ended
            + sum(
                t.answered_at is not None and line.phase != ENDED
                for t, line in zip(self.report.targets, self.lines, strict=True)
            ),
        }

    def headline(self, shown: Callable[[str], str] = str) -> str:
        """Who is on the call and how many are where; ``shown`` renders each name (`escape.md`
        for a markdown description)."""
        c = self.counts()
        who = ", ".join(shown(name) for name in self.on_call) or "nobody"
        return (
            f"{c['on the call']} on the call ({who}); {c['ringing']} dialling/ringing, "
            f"{c['waiting']} waiting, {c['done']} done of {len(self.lines)}"
        )

    def rows(self) -> list[dict[str, str]]:
        rows = []
        for t, line in zip(self.report.targets, self.lines, strict=True):
            if line.phase == ENDED:
                state = f"{ICONS.get(t.status, '')} {t.status}"
            else:
                state = f"{PHASE_ICONS.get(line.phase, '')} {line.phase}"
            rows.append(
                {
                    "#": str(t.index + 1),
                    "bridge": bridge_label(t),
                    "now": state,
                    "since": f"{line.since:%H:%M:%S}",
                    "attempt": str(t.attempts or ""),
                    "on call": "yes" if line.phase in ON_CALL_PHASES else "",
                    "note": line.note or (t.error or t.detail or "" if line.phase == ENDED else ""),
                }
            )
        return rows

    def artifact_rows(self) -> list[dict[str, str]]:
        """`rows` as the board artifact shows them: cut to fit the Prefect UI's artifact column at
        1,400 px ("on call" is in "now"; long names and notes end in "…"). The Prefect UI renders
        each cell as markdown: names and notes are escaped (`escape.md`)."""
        return [
            {
                "#": r["#"],
                "bridge": cell(clip(plain(r["bridge"]), 24)),
                "now": r["now"],
                "since": r["since"],
                "try": r["attempt"],
                "note": cell(clip(plain(r["note"]), 30)),
            }
            for r in self.rows()
        ]

    # -- publishing --------------------------------------------------------------------------

    def _changed(self) -> None:
        rows = self.rows()
        for watch in list(watchers):
            with contextlib.suppress(Exception):  # a broken view must not stop a campaign
                watch(rows)
        self._dirty.set()
        if self._writer is None:
            with contextlib.suppress(RuntimeError):  # no running loop: nothing to publish to
                self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    async def _write_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self.publish()
            await asyncio.sleep(MIN_PUBLISH_INTERVAL)

    async def publish(self) -> None:
        """Write the board table and the progress now (best effort: the campaign goes on without).

        The board artifact is created once and then updated in place, so the run has one board.
        """
        from prefect.artifacts import TableArtifact, acreate_table_artifact, aupdate_progress_artifact
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.actions import ArtifactUpdate

        # An artifact's description is markdown too. What the UI already shows is not written
        # again: each write is an API call and an event.
        rows, headline = self.artifact_rows(), self.headline(md)
        if (rows, headline) != self._shown_board:
            with contextlib.suppress(Exception):
                if self.board_id is None:
                    self.board_id = await acreate_table_artifact(
                        table=rows, key=self.key, description=headline
                    )
                else:
                    data = await TableArtifact(table=rows).aformat()
                    async with get_client() as client:
                        await client.update_artifact(
                            self.board_id, ArtifactUpdate(data=data, description=headline)
                        )
                self._shown_board = (rows, headline)
        settled = self.counts()["settled"]
        if self.progress_id and settled != self._shown_settled:
            with contextlib.suppress(Exception):
                await aupdate_progress_artifact(
                    self.progress_id,
                    100.0 * settled / max(1, len(self.lines)),
                    description=f"{md(self.report.campaign)}: {settled}/{len(self.lines)} bridges "
                    "answered or finished",
                )
                self._shown_settled = settled

    async def close(self) -> None:
        """Stop the coalescing writer and write the final state once."""
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
            self._writer = None
        await self.publish()
