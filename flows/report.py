"""What a campaign returns and publishes: one line per target, and a verdict."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime

from pydantic import BaseModel, Field

from .campaign import Outcome

# Daily does not document how a failed call appears in `dialout.error.error_msg`: it is free
# text that may change (https://docs.daily.co/reference/rest-api/webhooks/events/dialout-error).
# A number counts as a SIP status only in an unmistakable context ("SIP 486", "status: 486",
# or followed by the RFC 3261 reason phrase of that very code); any other wording gives the
# generic status with Daily's raw text, never a guessed specific one.
REASONS = {
    404: "not found", 408: "request timeout", 410: "gone", 480: "temporarily unavailable",
    484: "address incomplete", 486: "busy here", 487: "request terminated", 488: "not acceptable",
    500: "server internal error", 502: "bad gateway", 503: "service unavailable",
    504: "server time-out", 600: "busy everywhere", 603: "decline", 604: "does not exist anywhere",
    606: "not acceptable", 403: "forbidden", 401: "unauthorized", 407: "proxy authentication required",
}
_SIP_CONTEXT = re.compile(r"\b(?:sip(?:/2\.0)?|status|code|cause)\s*[:=#-]?\s*([3-6]\d\d)\b", re.I)
_CODE_THEN_WORDS = re.compile(r"\b([3-6]\d\d)\s+([a-z][a-z -]+)", re.I)
# 486 Busy Here, 600 Busy Everywhere
BUSY_CODES = {486, 600}
# 408 Request Timeout, 480 Temporarily Unavailable, 487 Request Terminated (cancelled while ringing)
NO_ANSWER_CODES = {408, 480, 487}
# Nobody there to ring: no such user/number, or the far end's server could not take the call.
UNREACHABLE_CODES = {404, 410, 484, 502, 503, 504, 604}


def sip_code_of(error_msg: str | None) -> int | None:
    """The SIP status in a Daily error text, only when the text says it is one.

    Example:
        >>> sip_code_of("SIP 486 Busy Here"), sip_code_of("486 busy here"), sip_code_of("room 486 is full")
        (486, 486, None)
    """
    text = error_msg or ""
    match = _SIP_CONTEXT.search(text)
    if match:
        return int(match.group(1))
    for match in _CODE_THEN_WORDS.finditer(text):
        code, words = int(match.group(1)), match.group(2).strip().lower()
        if code in REASONS and words.startswith(REASONS[code]):
            return code
    return None


def outcome_of_error(error_msg: str | None) -> tuple[Outcome, int | None]:
    """Map a ``dialout.error`` message to an outcome.

    busy (486/600), no_answer (408/480/487), unreachable (404/410/484/502-504/604), rejected (any
    other 4xx, 603/606: the far end refused), else ``ended_before_answer``: the generic status,
    for which the report keeps Daily's raw text. Free text without a SIP status gets it too.

    Example:
        >>> outcome_of_error("SIP 603 Decline"), outcome_of_error("The callee is busy")
        (('rejected', 603), ('ended_before_answer', None))
    """
    code = sip_code_of(error_msg)
    if code in BUSY_CODES:
        return "busy", code
    if code in NO_ANSWER_CODES:
        return "no_answer", code
    if code in UNREACHABLE_CODES:
        return "unreachable", code
    if code is not None and (400 <= code < 500 or code in (603, 606)):
        return "rejected", code
    return "ended_before_answer", code


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
    error: str | None = None
    events_received: int = 0
    duplicate_events: int = 0
    event_latency_p50: float | None = Field(default=None, description="Daily send -> flow, seconds")
    event_latency_p95: float | None = None
    forged_events: int = Field(
        default=0, description="Events that claimed to be Daily's but carried no valid Daily "
        "signature: ignored, never part of an outcome.",
    )
    notes: list[str] = Field(default_factory=list, description="What to fix, found during the run.")

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
        for note in self.notes:
            text += f". {note}"
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
        forged = (
            f" {self.forged_events} event(s) not signed by Daily were ignored." if self.forged_events else ""
        )
        return (
            f"**{self.campaign}** {verdict}{duration}: {self.message} "
            f"(needed {self.required}). Room `{self.room}`"
            f"{' (created for this run)' if self.room_created else ''}; "
            f"dial-in endpoints ready {len(self.dialin_ready)}/{len(self.dialin_endpoints)}. "
            f"Afterwards: {cleanup}.{forged}"
        )
