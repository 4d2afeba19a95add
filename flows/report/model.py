"""What a campaign returns and publishes: one line per target, and a verdict."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State

from daily_sip.flows.campaign.model import ANSWERED, Outcome
from daily_sip.flows.report.escape import cell, code, md, plain
from daily_sip.flows.report.naming import clip

# Daily does not document how a failed call appears in `dialout.error.error_msg`: it is free
# text that may change (https://docs.daily.co/reference/rest-api/webhooks/events/dialout-error).
# A number counts as a SIP status only in an unmistakable context ("SIP 486", "status: 486",
# or followed by the RFC 3261 reason phrase of that very code); any other wording gives the
# generic status with Daily's raw text, never a guessed specific one.
REASONS = {
    404: "not found",
    408: "request timeout",
    410: "gone",
    480: "temporarily unavailable",
    484: "address incomplete",
    486: "busy here",
    487: "request terminated",
    488: "not acceptable",
    500: "server internal error",
    502: "bad gateway",
    503: "service unavailable",
    504: "server time-out",
    600: "busy everywhere",
    603: "decline",
    604: "does not exist anywhere",
    606: "not acceptable",
    403: "forbidden",
    401: "unauthorized",
    407: "proxy authentication required",
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


class DtmfStepResult(BaseModel):
    """One ``sendDTMF`` call of a target's script, as it happened."""

    tones: str
    sent_at: datetime
    after_answer_s: float = Field(description="Seconds from the answer to this call")


def _secs(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


# One glance per status, in the table artifacts, the summary and the terminal.
ICONS = {
    "joined": "✅",
    "answered": "✅",
    "dropped_after_dtmf": "🔐",
    "dtmf_failed": "🔐",
    "busy": "⛔",
    "no_answer": "⌛",
    "rejected": "🚫",
    "failed": "❌",
    "canceled": "⏹️",
    "unreachable": "📵",
    "ended_before_answer": "❔",
    "no_events": "🔇",
    "unknown": "❔",
}


def _hms(at: datetime | None) -> str:
    return f"{at:%H:%M:%S}" if at else ""


class TargetResult(BaseModel):
    index: int
    sip_uri: str
    display_name: str | None = None
    bridge: str = "generic"
    status: Outcome = "unknown"
    sip_code: int | None = None
    error: str | None = None
    detail: str | None = None
    attempts: int = 0
    session_ids: list[str] = Field(default_factory=list)
    dialed_at: datetime | None = Field(default=None, description="Start of the last attempt")
    connected_at: datetime | None = None
    answered_at: datetime | None = None
    joined_at: datetime | None = Field(
        default=None, description="When the last tone was sent, for a target that joined"
    )
    stopped_at: datetime | None = None
    seconds_to_answer: float | None = Field(default=None, description="Dial -> answered")
    seconds_to_joined: float | None = Field(default=None, description="Dial -> last tone sent (joined)")
    seconds_on_call: float | None = None
    dtmf_script: str | None = Field(default=None, description="The script planned for this target")
    dtmf_sent: str | None = Field(default=None, description="The script as far as it was sent")
    dtmf_steps: list[DtmfStepResult] = Field(default_factory=list)

    def steps_text(self) -> str:
        """``tones@seconds-after-answer`` per sendDTMF call, e.g. ``123#@2.0 45#@5.1``."""
        return " ".join(f"{s.tones}@{s.after_answer_s:.1f}" for s in self.dtmf_steps)

    def row(self) -> dict[str, str]:
        return {
            "#": str(self.index + 1),
            "target": self.display_name or self.sip_uri,
            "sip_uri": self.sip_uri,
            "bridge": self.bridge,
            "status": self.status,
            "icon": ICONS.get(self.status, ""),
            "sip_code": "" if self.sip_code is None else str(self.sip_code),
            "attempts": str(self.attempts),
            "answer_s": _secs(self.seconds_to_answer),
            "joined_s": _secs(self.seconds_to_joined),
            "on_call_s": _secs(self.seconds_on_call),
            "dtmf": self.dtmf_sent or "",
            "dtmf_steps": self.steps_text(),
            "detail": self.error or self.detail or "",
        }

    def table_row(self) -> dict[str, str]:
        """One row of the results table artifact: what fits the Prefect UI's artifact column at
        1,400 px (the full row is in the summary artifact and in the run's result). The Prefect UI
        renders each cell as markdown, so text cells are escaped (`escape.md`)."""
        return {
            "#": str(self.index + 1),
            "bridge": cell(clip(plain(self.display_name or self.sip_uri), 24)),
            "status": self.status,
            "SIP": "" if self.sip_code is None else str(self.sip_code),
            "try": str(self.attempts),
            "on call": _secs(self.seconds_on_call),
            "dtmf": cell(clip(plain(self.dtmf_sent or ""), 10)),
            "detail": cell(clip(plain(self.error or self.detail or ""), 22)),
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
    cleanup_pending: list[str] = Field(
        default_factory=list, description="What cleanup could not finish; left to the sweeper."
    )
    error: str | None = None
    events_received: int = Field(default=0, description="Signed events for this run's legs and room.")
    duplicate_events: int = 0
    event_latency_p50: float | None = Field(default=None, description="Daily send -> flow, seconds")
    event_latency_p95: float | None = None
    timeline: list[list[LegEvent]] = Field(
        default_factory=list, description="Per target, in order: every state change of its legs."
    )

    success_counts: str = Field(default="joined", description="The campaign's success.counts rule")
    forged_events: int = Field(
        default=0,
        description="Events that claimed to be Daily's but carried no valid Daily "
        "signature: ignored, never part of an outcome.",
    )
    notes: list[str] = Field(default_factory=list, description="What to fix, found during the run.")

    @property
    def answered(self) -> int:
        """Targets whose far end picked up (joined ones and dropped ones included)."""
        return sum(t.status in ANSWERED for t in self.targets)

    def counts_toward_success(self, t: TargetResult) -> bool:
        if self.success_counts == "answered":
            return t.status in ANSWERED
        return t.status == "joined" or (t.status == "answered" and not t.dtmf_script)

    @property
    def succeeded(self) -> int:
        """Targets that count toward the success rule (``success.counts``)."""
        return sum(self.counts_toward_success(t) for t in self.targets)

    @property
    def success(self) -> bool:
        # A run that could not turn off what it turned on never reads as a success.
        return self.error is None and not self.cleanup_pending and self.succeeded >= self.required

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(t.status for t in self.targets))

    @property
    def message(self) -> str:
        """The verdict in one line: counts by status, then why it stopped, notes, what is left."""
        return self.message_as(str)

    def message_as(self, shown: Callable[[str], str]) -> str:
        """`message` with ``shown`` applied to the text that comes from outside (Daily's errors,
        what cleanup could not do): `escape.md` for markdown."""
        good = Counter(t.status for t in self.targets if self.counts_toward_success(t))
        others = Counter(t.status for t in self.targets if not self.counts_toward_success(t))
        tail = ", ".join(f"{status.replace('_', ' ')} {n}" for status, n in sorted(others.items()))
        verb = (
            "joined"
            if set(good) == {"joined"}
            else (
                "answered"
                if self.success_counts == "answered" or set(good) <= {"answered"}
                else "joined or answered"
            )
        )
        text = f"{self.succeeded}/{len(self.targets)} bridges {verb}"
        if len(good) > 1:
            text += " (" + ", ".join(f"{s.replace('_', ' ')} {n}" for s, n in sorted(good.items())) + ")"
        if tail:
            text += f"; {tail}"
        if self.error:
            text += f". Stopped early: {shown(self.error)}"
        for note in self.notes:
            text += f". {shown(note)}"
        if self.cleanup_pending:
            text += f". Cleanup not finished, left for the sweeper: {shown('; '.join(self.cleanup_pending))}"
        return text

    def table(self) -> str:
        rows = [t.row() for t in self.targets]
        for r in rows:
            r["status"] = f"{r['icon']} {r['status']}"
        cols = [
            "#",
            "target",
            "status",
            "sip_code",
            "attempts",
            "answer_s",
            "joined_s",
            "on_call_s",
            "dtmf_steps",
            "detail",
        ]
        if not any(r["dtmf_steps"] or r["joined_s"] for r in rows):
            cols = [c for c in cols if c not in ("joined_s", "dtmf_steps")]
        widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
        lines = ["  ".join(c.ljust(widths[c]) for c in cols)]
        lines += ["  ".join(r[c].ljust(widths[c]) for c in cols) for r in rows]
        return "\n".join(lines)

    @property
    def rule(self) -> str:
        """The success rule in words, with whether it held."""
        return self.rule_as(str)

    def rule_as(self, shown: Callable[[str], str]) -> str:
        """`rule` with ``shown`` applied to Daily's text in it (`escape.md` for markdown)."""
        n = len(self.targets)
        verb = "answer" if self.success_counts == "answered" else "join (answer, for bridges without DTMF)"
        need = f"at least {self.required} of {n} bridges must {verb}"
        if self.error:
            return f"{need}; not applied: the campaign stopped early ({shown(self.error)})"
        held = "met" if self.succeeded >= self.required else "not met"
        return f"{need}; {held} with {self.succeeded}"

    def final_state(self, cancelled: bool = False) -> State:
        """The flow run's end: Cancelled on request, else Completed when the success rule holds,
        Failed otherwise; the report is the run's result either way.

        Example:
            ```python
            return run.report.final_state(cancelled=run.cancel_asked.is_set())
            ```
        """
        from prefect.states import Cancelled, Completed, Failed

        if cancelled:
            return Cancelled(message=f"cancelled on request; {plain(self.message)}", data=self)
        if self.success:
            return Completed(message=plain(self.message), data=self)
        return Failed(message=plain(self.message), data=self)

    def summary_markdown(self) -> str:
        """The run at a glance: verdict, the rule that decided it, every bridge with its times.

        Every piece of user or Daily text is escaped (`escape.md`): a name cannot add a heading,
        a link or a table cell, so the verdict line is always the first line.
        """
        verdict = "✅ succeeded" if self.success else "❌ did not succeed"
        duration = (
            f" in {(self.finished_at - self.started_at).total_seconds():.0f} s" if self.finished_at else ""
        )
        cleanup = "; ".join(self.cleanup) or "nothing to clean up"
        if self.cleanup_pending:
            cleanup += "; STILL PENDING (left to the sweeper): " + "; ".join(self.cleanup_pending)
        lines = [
            f"## {md(self.campaign)} {verdict}{duration}: {self.message_as(md)}",
            "",
            f"**Success rule:** {self.rule_as(md)}.",
            "",
            f"Started {self.started_at:%Y-%m-%d %H:%M:%S} UTC. Room `{code(self.room)}`"
            f"{' (created for this run)' if self.room_created else ''}; "
            f"dial-in endpoints ready {len(self.dialin_ready)}/{len(self.dialin_endpoints)}.",
            "",
            "| | Bridge | Outcome | Attempts | Connected | Answered | Joined after (s) | Ended | On call (s) "
            "| Detail |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for t in self.targets:
            cells = [
                ICONS.get(t.status, ""),
                t.display_name or t.sip_uri,
                t.status.replace("_", " "),
                str(t.attempts),
                _hms(t.connected_at),
                _hms(t.answered_at),
                _secs(t.seconds_to_joined),
                _hms(t.stopped_at),
                _secs(t.seconds_on_call),
                t.error or t.detail or "",
            ]
            lines.append("| " + " | ".join(md(c) for c in cells) + " |")
        lines += ["", f"Afterwards: {md(cleanup)}."]
        if self.forged_events:
            lines += ["", f"⚠️ {self.forged_events} event(s) not signed by Daily were ignored."]
        return "\n".join(lines) + self._steps_markdown()

    def _steps_markdown(self) -> str:
        """The DTMF script of each target that had one: every sendDTMF call with its time."""
        parts = []
        for t in self.targets:
            if not t.dtmf_script:
                continue
            lines = [
                f"\n\n**{md(t.display_name or t.sip_uri)}**: `{t.status}`, script `{code(t.dtmf_script)}`"
                + (f", answered after {t.seconds_to_answer:.1f} s" if t.seconds_to_answer is not None else "")
                + (f", joined after {t.seconds_to_joined:.1f} s" if t.seconds_to_joined is not None else "")
            ]
            lines += [
                f"- `{code(s.tones)}` at {s.sent_at.isoformat(timespec='milliseconds')} "
                f"(answer + {s.after_answer_s:.1f} s)"
                for s in t.dtmf_steps
            ]
            parts.append("\n".join(lines))
        return "".join(parts)
