"""The campaign: what to dial, how, and what counts as success. Also the Prefect UI form.

Every rule is checked when the model is built, i.e. before the flow makes its first API call;
a bad campaign fails with one error that lists each bad field and how to fix it.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from daily_sip.tasks.models.validators import (
    AudioCodecList,
    DisplayName,
    DtmfTones,
    RoomName,
    SipUriStr,
    VideoCodecList,
    check_sip_headers,
    sip_uri_with_headers,
)

# `ended_before_answer`: Daily stopped the call before any answer and said no more (busy, declined,
# unreachable and no answer can all look like that). `no_events`: the leg was started but no
# webhook event at all reached the run (see flows/silence.py).
Outcome = Literal["answered", "busy", "no_answer", "rejected", "unreachable", "ended_before_answer",
                  "failed", "no_events", "canceled", "unknown"]
REDIALABLE = ("busy", "no_answer", "rejected", "unreachable", "ended_before_answer", "failed")


class _Form(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Target(_Form):
    """One bridge to dial."""

    sip_uri: SipUriStr = Field(
        title="SIP URI",
        description="Where to dial, e.g. sip:123456789@zoomcrc.com or sip:meeting@site.webex.com.",
        examples=["sip:123456789@zoomcrc.com"],
    )
    display_name: DisplayName | None = Field(
        default=None, title="Display name",
        description="Name shown in the Daily room for this leg (default: the URI's user part).",
    )
    dtmf: DtmfTones | None = Field(
        default=None, title="DTMF after answer",
        description="Tones to send once the bridge answers, e.g. a meeting PIN '123456#'.",
        examples=["123456#"],
    )
    dtmf_delay_seconds: float = Field(
        default=2.0, ge=0, le=300, title="DTMF delay (s)",
        description="Seconds to wait after answer before sending the DTMF (IVRs need a moment).",
    )
    headers: dict[str, str] = Field(
        default_factory=dict, title="SIP X- headers",
        description='Custom headers for the INVITE, as JSON, e.g. {"X-Campaign": "monday-standup"}; '
        "names must start with 'X-'.",
        examples=[{"X-Campaign": "monday-standup"}],
    )

    @model_validator(mode="after")
    def _headers_are_x(self) -> Target:
        check_sip_headers(self.headers)
        sip_uri_with_headers(self.sip_uri, self.headers)  # the combined URI must still be valid
        return self

    @property
    def dial_uri(self) -> str:
        return sip_uri_with_headers(self.sip_uri, self.headers)


class DialIn(_Form):
    """SIP dial-in endpoints turned on for the campaign room."""

    enabled: bool = Field(
        default=True, title="Enabled", description="Turn SIP dial-in on while the campaign runs."
    )
    display_name: DisplayName = Field(
        default="SIP caller", title="Dial-in display name",
        description="Name shown in the room for people who dial in.",
    )
    num_endpoints: int = Field(
        default=1, ge=1, le=20, title="Dial-in endpoints",
        description="How many SIP addresses callers can dial. Each counts against the session limit.",
    )


class AfterAnswer(_Form):
    """What to do with a leg once the bridge answers."""

    mode: Literal["hang_up_after", "stay"] = Field(
        default="hang_up_after", title="Mode",
        description="hang_up_after: hang up once the hold time has passed. "
        "stay: stay on until the far end leaves, at most the maximum call length.",
    )
    hold_seconds: float = Field(
        default=30.0, gt=0, le=86400, title="Hold time (s)",
        description="hang_up_after: seconds to stay on the call after it is answered.",
    )
    max_seconds: float = Field(
        default=3600.0, gt=0, le=86400, title="Maximum call length (s)",
        description="stay: hang up after this many seconds at the latest.",
    )


class Redial(_Form):
    """When and how to try a target again."""

    attempts: int = Field(
        default=1, ge=1, le=10, title="Attempts",
        description="Total attempts per target, the first included (1 = no redial).",
    )
    backoff_seconds: float = Field(
        default=10.0, ge=0, le=3600, title="First backoff (s)",
        description="Seconds to wait before the second attempt.",
    )
    backoff_multiplier: float = Field(
        default=2.0, ge=1, le=10, title="Backoff multiplier",
        description="Each further wait is the previous one times this.",
    )
    outcomes: list[Literal["busy", "no_answer", "rejected", "unreachable", "ended_before_answer",
                           "failed"]] = Field(
        default_factory=lambda: ["busy", "no_answer", "failed"], title="Redial on",
        description="Outcomes that earn another attempt.",
        json_schema_extra={"default": ["busy", "no_answer", "failed"]},  # the form shows it preselected
    )


class Success(_Form):
    """What counts as a successful campaign."""

    min_answered_fraction: float = Field(
        default=1.0, ge=0, le=1, title="Answered fraction",
        description="Share of targets that must answer (1.0 = all).",
    )
    min_answered: int = Field(
        default=0, ge=0, title="Minimum answered",
        description="And at least this many targets must answer (0 = no minimum).",
    )

    def required(self, n_targets: int) -> int:
        return max(self.min_answered, math.ceil(self.min_answered_fraction * n_targets - 1e-9))


class Campaign(_Form):
    """A dial-out campaign: put one Daily room onto many SIP bridges and report who answered."""

    model_config = ConfigDict(extra="forbid", title="Campaign")

    name: str = Field(
        default="campaign", min_length=1, max_length=80, title="Campaign name",
        description="Shown in the run's report and in the names of rooms it creates.",
    )
    targets: list[Target] = Field(
        min_length=1, max_length=500, title="Targets",
        description="The bridges to dial, in order: add one item per bridge; only its SIP URI is required.",
        examples=[[{"sip_uri": "sip:123456789@zoomcrc.com", "display_name": "Zoom bridge"}]],
    )
    room: RoomName | None = Field(
        default=None, title="Room",
        description="Name of an existing Daily room to put on the bridges; "
        "None (the default) creates a fresh room for the run.",
    )
    delete_created_room: bool = Field(
        default=True, title="Delete created room",
        description="Delete the room afterwards if this campaign created it.",
    )
    dial_in: DialIn = Field(default_factory=DialIn, title="SIP dial-in")
    video: bool = Field(default=False, title="Video", description="Send and receive video on the SIP legs.")
    audio_codecs: AudioCodecList = Field(
        default_factory=lambda: ["OPUS", "G722", "PCMU", "PCMA"], title="Audio codecs",
        description="Audio codecs, preferred first (Daily transcodes from the first one if needed).",
        json_schema_extra={"default": ["OPUS", "G722", "PCMU", "PCMA"]},  # the form shows it preselected
    )
    video_codecs: VideoCodecList = Field(
        default_factory=lambda: ["H264", "VP8"], title="Video codecs",
        description="Video codecs, preferred first; used when Video is on.",
        json_schema_extra={"default": ["H264", "VP8"]},  # the form shows it preselected
    )
    ring_timeout_seconds: float = Field(
        default=45.0, gt=0, le=600, title="Ring timeout (s)",
        description="Give up on a leg that has not answered after this long (outcome no_answer).",
    )
    after_answer: AfterAnswer = Field(default_factory=AfterAnswer, title="After answer")
    redial: Redial = Field(default_factory=Redial, title="Redial")
    success: Success = Field(default_factory=Success, title="Success")
    session_limit: int = Field(
        default=5, ge=1, le=100, title="Session limit",
        description="Your account's max_sip_pstn_sessions_per_room (Daily's default is 5).",
    )
    max_concurrent_legs: int | None = Field(
        default=None, ge=1, title="Max concurrent legs",
        description="Cap on simultaneous legs; None (the default) = session limit minus dial-in endpoints.",
    )
    ready_timeout_seconds: float = Field(
        default=60.0, gt=0, le=600, title="Ready timeout (s)",
        description="How long to wait for the room's SIP dial-in endpoints before dialing anyone.",
    )
    deadline_seconds: float = Field(
        default=3600.0, gt=0, le=86400, title="Campaign deadline (s)",
        description="Hard stop for the whole campaign; legs still up are hung up.",
    )

    @model_validator(mode="after")
    def _fits_together(self) -> Campaign:
        problems = []
        seen: dict[str, int] = {}
        for i, target in enumerate(self.targets):
            if target.sip_uri.lower() in seen:
                problems.append(
                    f"targets.{i}.sip_uri: {target.sip_uri} is also targets.{seen[target.sip_uri.lower()]}; "
                    "list each bridge once (raise redial.attempts to call it again)"
                )
            seen.setdefault(target.sip_uri.lower(), i)
        reserved = self.dial_in.num_endpoints if self.dial_in.enabled else 0
        if reserved >= self.session_limit:
            problems.append(
                f"dial_in.num_endpoints: {reserved} endpoints leave no room for dial-out legs under "
                f"session_limit {self.session_limit}; lower num_endpoints or raise session_limit"
            )
        elif self.max_concurrent_legs and self.max_concurrent_legs > self.session_limit - reserved:
            problems.append(
                f"max_concurrent_legs: {self.max_concurrent_legs} exceeds session_limit {self.session_limit}"
                f" minus {reserved} dial-in endpoint(s); use at most {self.session_limit - reserved}"
            )
        if self.success.required(len(self.targets)) > len(self.targets):
            problems.append(
                f"success.min_answered: {self.success.min_answered} is more than the "
                f"{len(self.targets)} targets; lower it"
            )
        hold = self.after_answer
        if hold.mode == "hang_up_after" and hold.hold_seconds > self.deadline_seconds:
            problems.append("after_answer.hold_seconds: longer than deadline_seconds; shorten it")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def leg_capacity(self) -> int:
        reserved = self.dial_in.num_endpoints if self.dial_in.enabled else 0
        return self.max_concurrent_legs or (self.session_limit - reserved)


class CampaignFileError(ValueError):
    """A campaign file that cannot be used; the message lists each bad field and its fix."""


def describe_errors(exc: Exception) -> list[str]:
    """One line per problem: ``field.path: what is wrong``."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return [str(exc)]
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if loc:
            lines.append(f"{loc}: {msg}")
        else:
            lines.extend(part.strip() for part in msg.split("; "))
    return lines


def load_campaign(path: str) -> Campaign:
    """Read a campaign from YAML or JSON (the same schema as the flow parameter) and validate it."""
    from pathlib import Path

    import yaml
    from pydantic import ValidationError

    text = Path(path).read_text()
    try:
        data = yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as exc:
        raise CampaignFileError(f"{path}: not valid YAML/JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CampaignFileError(f"{path}: expected a mapping with at least 'targets'")
    try:
        return Campaign.model_validate(data)
    except ValidationError as exc:
        lines = "\n  ".join(describe_errors(exc))
        raise CampaignFileError(f"{path}: campaign is not valid:\n  {lines}") from None
