"""What a campaign returns and publishes: one line per target, and a verdict."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime

from pydantic import BaseModel, Field

from .campaign import Outcome

_SIP_CODE = re.compile(r"\b([3-6]\d\d)\b")
# 486 Busy Here, 600 Busy Everywhere
BUSY_CODES = {486, 600}
# 408 Request Timeout, 480 Temporarily Unavailable, 487 Request Terminated (cancelled while ringing)
NO_ANSWER_CODES = {408, 480, 487}


def sip_code_of(error_msg: str | None) -> int | None:
    match = _SIP_CODE.search(error_msg or "")
    return int(match.group(1)) if match else None


def outcome_of_error(error_msg: str | None) -> tuple[Outcome, int | None]:
    """Map a ``dialout.error`` message to an outcome: busy, no answer, rejected (the far end
    refused: 4xx/603), or failed (5xx, SDP trouble, anything without a SIP code)."""
    code = sip_code_of(error_msg)
    if code in BUSY_CODES:
        return "busy", code
    if code in NO_ANSWER_CODES:
        return "no_answer", code
    if code is not None and (400 <= code < 500 or code in (603, 604, 606)):
        return "rejected", code
    return "failed", code


# One glance per status, in the table artifacts, the summary and the terminal.
ICONS = {"answered": "✅", "busy": "⛔", "no_answer": "⌛", "rejected": "🚫", "failed": "❌",
         "canceled": "⏹️", "unknown": "❔"}


def _hms(at: datetime | None) -> str:
    return f"{at:%H:%M:%S}" if at else ""


class TargetResult(BaseModel):
    index: int
    sip_uri: str
    display_name: str | None = None
    status: Outcome = "unknown"
    sip_code: int | None = None
    error: str | None = None
    detail: str | None = None
    attempts: int = 0
    session_ids: list[str] = Field(default_factory=list)
    connected_at: datetime | None = None
    answered_at: datetime | None = None
    stopped_at: datetime | None = None
    seconds_on_call: float | None = None
    dtmf_sent: str | None = None

    def row(self) -> dict[str, str]:
        return {
            "#": str(self.index + 1),
            "target": self.display_name or self.sip_uri,
            "sip_uri": self.sip_uri,
            "status": self.status,
            "icon": ICONS.get(self.status, ""),
            "sip_code": "" if self.sip_code is None else str(self.sip_code),
            "attempts": str(self.attempts),
            "on_call_s": "" if self.seconds_on_call is None else f"{self.seconds_on_call:.1f}",
            "dtmf": self.dtmf_sent or "",
            "detail": self.error or self.detail or "",
        }


class LegEvent(BaseModel):
    """One change of a bridge's state, as the live board saw it (for the timeline)."""

    at: datetime
    phase: str
    note: str = ""


class CampaignReport(BaseModel):
    campaign: str
    room: str | None = None
    room_created: bool = False
    flow_run_id: str | None = None
    started_at: datetime
    finished_at: datetime | None = None
    targets: list[TargetResult]
    required: int
    dialin_endpoints: list[str] = Field(default_factory=list)
    dialin_ready: list[str] = Field(default_factory=list)
    cleanup: list[str] = Field(default_factory=list, description="What was turned off afterwards.")
    error: str | None = None
    events_received: int = 0
    duplicate_events: int = 0
    event_latency_p50: float | None = Field(default=None, description="Daily send -> flow, seconds")
    event_latency_p95: float | None = None
    timeline: list[list[LegEvent]] = Field(
        default_factory=list, description="Per target, in order: every state change of its legs.")

    @property
    def answered(self) -> int:
        return sum(t.status == "answered" for t in self.targets)

    @property
    def success(self) -> bool:
        return self.error is None and self.answered >= self.required

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(t.status for t in self.targets))

    @property
    def message(self) -> str:
        others = Counter(t.status for t in self.targets if t.status != "answered")
        tail = ", ".join(f"{status.replace('_', ' ')} {n}" for status, n in sorted(others.items()))
        text = f"{self.answered}/{len(self.targets)} bridges answered"
        if tail:
            text += f"; {tail}"
        if self.error:
            text += f". Stopped early: {self.error}"
        return text

    def table(self) -> str:
        rows = [t.row() for t in self.targets]
        for r in rows:
            r["status"] = f"{r['icon']} {r['status']}"
        cols = ["#", "target", "status", "sip_code", "attempts", "on_call_s", "dtmf", "detail"]
        widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
        lines = ["  ".join(c.ljust(widths[c]) for c in cols)]
        lines += ["  ".join(r[c].ljust(widths[c]) for c in cols) for r in rows]
        return "\n".join(lines)

    @property
    def rule(self) -> str:
        """The success rule in words, with whether it held."""
        n = len(self.targets)
        need = f"at least {self.required} of {n} bridges must answer"
        if self.error:
            return f"{need}; not applied: the campaign stopped early ({self.error})"
        held = "met" if self.answered >= self.required else "not met"
        return f"{need}; {held} with {self.answered} answered"

    def summary_markdown(self) -> str:
        """The run at a glance: verdict, the rule that decided it, every bridge with its times."""
        verdict = "✅ succeeded" if self.success else "❌ did not succeed"
        duration = (
            f" in {(self.finished_at - self.started_at).total_seconds():.0f} s" if self.finished_at else ""
        )
        cleanup = "; ".join(self.cleanup) or "nothing to clean up"
        lines = [
            f"## {self.campaign} {verdict}{duration}: {self.message}",
            "",
            f"**Success rule:** {self.rule}.",
            "",
            f"Started {self.started_at:%Y-%m-%d %H:%M:%S} UTC. Room `{self.room}`"
            f"{' (created for this run)' if self.room_created else ''}; "
            f"dial-in endpoints ready {len(self.dialin_ready)}/{len(self.dialin_endpoints)}.",
            "",
            "| | Bridge | Outcome | Attempts | Connected | Answered | Ended | On call (s) | Detail |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for t in self.targets:
            cells = [ICONS.get(t.status, ""), t.display_name or t.sip_uri, t.status.replace("_", " "),
                     str(t.attempts), _hms(t.connected_at), _hms(t.answered_at), _hms(t.stopped_at),
                     "" if t.seconds_on_call is None else f"{t.seconds_on_call:.1f}",
                     t.error or t.detail or ""]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines += ["", f"Afterwards: {cleanup}."]
        return "\n".join(lines)
