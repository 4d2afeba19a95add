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
            "sip_code": "" if self.sip_code is None else str(self.sip_code),
            "attempts": str(self.attempts),
            "on_call_s": "" if self.seconds_on_call is None else f"{self.seconds_on_call:.1f}",
            "dtmf": self.dtmf_sent or "",
            "detail": self.error or self.detail or "",
        }


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
    cleanup_pending: list[str] = Field(
        default_factory=list, description="What cleanup could not finish; left to the sweeper.")
    error: str | None = None
    events_received: int = 0
    duplicate_events: int = 0
    event_latency_p50: float | None = Field(default=None, description="Daily send -> flow, seconds")
    event_latency_p95: float | None = None

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
        cols = ["#", "target", "status", "sip_code", "attempts", "on_call_s", "dtmf", "detail"]
        widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
        lines = ["  ".join(c.ljust(widths[c]) for c in cols)]
        lines += ["  ".join(r[c].ljust(widths[c]) for c in cols) for r in rows]
        return "\n".join(lines)

    def summary_markdown(self) -> str:
        verdict = "succeeded" if self.success else "did not succeed"
        duration = (
            f" in {(self.finished_at - self.started_at).total_seconds():.0f} s" if self.finished_at else ""
        )
        cleanup = "; ".join(self.cleanup) or "nothing to clean up"
        if self.cleanup_pending:
            cleanup += "; STILL PENDING (left to the sweeper): " + "; ".join(self.cleanup_pending)
        return (
            f"**{self.campaign}** {verdict}{duration}: {self.message} "
            f"(needed {self.required}). Room `{self.room}`"
            f"{' (created for this run)' if self.room_created else ''}; "
            f"dial-in endpoints ready {len(self.dialin_ready)}/{len(self.dialin_endpoints)}. "
            f"Afterwards: {cleanup}."
        )
