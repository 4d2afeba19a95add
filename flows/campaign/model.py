"""The campaign: what to dial, how, and what counts as success. Also the Prefect UI form.

Every rule is checked when the model is built, i.e. before the flow makes its first API call;
a bad campaign fails with one error that lists each bad field and how to fix it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import (
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from daily_sip.flows.campaign.targets import (  # re-exported: a campaign file speaks of targets and statuses
    ANSWERED,
    REDIALABLE,
    Outcome,
    Target,
    _Form,
    empty_means_none,
    empty_to_none,
)
from daily_sip.tasks.models.validators import (
    AudioCodec,
    AudioCodecList,
    DisplayName,
    RoomName,
    VideoCodec,
    VideoCodecList,
)

__all__ = ["ANSWERED", "REDIALABLE", "Campaign", "CampaignFileError", "Outcome", "Target", "load_campaign"]


class DialIn(_Form):
    """SIP dial-in endpoints turned on for the campaign room."""

    enabled: bool = Field(
        default=True, title="Enabled", description="Turn SIP dial-in on while the campaign runs."
    )
    display_name: DisplayName = Field(
        default="SIP caller",
        title="Dial-in display name",
        description="Name shown in the room for people who dial in.",
    )
    num_endpoints: int = Field(
        default=1,
        ge=1,
        le=20,
        title="Dial-in endpoints",
        description="How many SIP addresses callers can dial. Each counts against the session limit.",
    )


class AfterAnswer(_Form):
    """What to do with a leg once the bridge answers."""

    mode: Literal["hang_up_after", "stay"] = Field(
        default="hang_up_after",
        title="Mode",
        description="hang_up_after: hang up once the hold time has passed. "
        "stay: stay on until the far end leaves, at most the maximum call length.",
    )
    hold_seconds: float = Field(
        default=30.0,
        gt=0,
        le=86400,
        title="Hold time (s)",
        description="hang_up_after: seconds to stay on the call after it is answered (a bridge with "
        "a DTMF script stays at least until its join is confirmed).",
    )
    max_seconds: float = Field(
        default=3600.0,
        gt=0,
        le=86400,
        title="Maximum call length (s)",
        description="stay: hang up after this many seconds at the latest.",
    )


RedialOutcome = Literal["busy", "no_answer", "rejected", "unreachable", "ended_before_answer", "failed"]
DEFAULT_REDIAL_OUTCOMES: tuple[RedialOutcome, ...] = ("busy", "no_answer", "failed")
DEFAULT_AUDIO_CODECS: tuple[AudioCodec, ...] = ("OPUS", "G722", "PCMU", "PCMA")
DEFAULT_VIDEO_CODECS: tuple[VideoCodec, ...] = ("H264", "VP8")


class Redial(_Form):
    """When and how to try a target again."""

    attempts: int = Field(
        default=1,
        ge=1,
        le=10,
        title="Attempts",
        description="Total attempts per target, the first included (1 = no redial).",
    )
    backoff_seconds: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        title="First backoff (s)",
        description="Seconds to wait before the second attempt.",
    )
    backoff_multiplier: float = Field(
        default=2.0,
        ge=1,
        le=10,
        title="Backoff multiplier",
        description="Each further wait is the previous one times this.",
    )
    outcomes: list[RedialOutcome] = Field(
        default_factory=lambda: list(DEFAULT_REDIAL_OUTCOMES),
        title="Redial on",
        description="Outcomes that earn another attempt.",
        json_schema_extra={"default": ["busy", "no_answer", "failed"]},  # the form shows it preselected
    )


class Success(_Form):
    """What counts as a successful campaign."""

    counts: Literal["joined", "answered"] = Field(
        default="joined",
        title="A bridge counts when",
        description="joined: a bridge with a DTMF script counts once it joined (still connected "
        "join_confirm_seconds after the last tone), one without a script once it answered. "
        "answered: every bridge counts once it answered.",
    )
    min_answered_fraction: float = Field(
        default=1.0,
        ge=0,
        le=1,
        title="Answered fraction",
        description="Share of targets that must count (1.0 = all; see 'A bridge counts when').",
    )
    min_answered: int = Field(
        default=0,
        ge=0,
        title="Minimum answered",
        description="And at least this many targets must count (0 = no minimum).",
    )

    def required(self, n_targets: int) -> int:
        return max(self.min_answered, math.ceil(self.min_answered_fraction * n_targets - 1e-9))


class Campaign(_Form):
    """A dial-out campaign: put one Daily room onto many SIP bridges and report who answered."""

    model_config = ConfigDict(extra="forbid", title="Campaign")

    # One line of text: a name is shown in headings, run names and terminals, where a newline,
    # an ESC sequence or a bidi override would forge what is around it (`report.escape`).
    name: DisplayName = Field(
        default="campaign",
        min_length=1,
        max_length=80,
        title="Campaign name",
        description="Shown in the run's report and in the names of rooms it creates; one line, "
        "no control characters.",
    )
    targets: list[Target] = Field(
        min_length=1,
        max_length=500,
        title="Targets",
        description="The bridges to dial, in order: add one item per bridge with its SIP URI, or "
        "its bridge profile and meeting ID / passcode.",
        examples=[
            [
                {
                    "bridge": "zoom",
                    "meeting_id": "84512345678",
                    "passcode": "123456",
                    "display_name": "Zoom bridge",
                }
            ]
        ],
    )
    room: RoomName | None = Field(
        default=None,
        title="Room",
        json_schema_extra=empty_means_none,
        description="Name of an existing Daily room to put on the bridges; "
        "empty (the default) creates a fresh room for the run.",
    )
    delete_created_room: bool = Field(
        default=True,
        title="Delete created room",
        description="Delete the room afterwards if this campaign created it.",
    )
    dial_in: DialIn = Field(default_factory=DialIn, title="SIP dial-in")
    video: bool = Field(default=False, title="Video", description="Send and receive video on the SIP legs.")
    audio_codecs: AudioCodecList = Field(
        default_factory=lambda: list(DEFAULT_AUDIO_CODECS),
        title="Audio codecs",
        description="Audio codecs, preferred first (Daily transcodes from the first one if needed).",
        json_schema_extra={"default": list(DEFAULT_AUDIO_CODECS)},  # the form shows it preselected
    )
    video_codecs: VideoCodecList = Field(
        default_factory=lambda: list(DEFAULT_VIDEO_CODECS),
        title="Video codecs",
        description="Video codecs, preferred first; used when Video is on.",
        json_schema_extra={"default": ["H264", "VP8"]},  # the form shows it preselected
    )
    ring_timeout_seconds: float = Field(
        default=45.0,
        gt=0,
        le=600,
        title="Ring timeout (s)",
        description="Give up on a leg that has not answered after this long (outcome no_answer).",
    )
    after_answer: AfterAnswer = Field(default_factory=AfterAnswer, title="After answer")
    redial: Redial = Field(default_factory=Redial, title="Redial")
    success: Success = Field(default_factory=Success, title="Success")
    session_limit: int = Field(
        default=5,
        ge=1,
        le=100,
        title="Session limit",
        description="Your account's max_sip_pstn_sessions_per_room (Daily's default is 5).",
    )
    max_concurrent_legs: int | None = Field(
        default=None,
        ge=1,
        title="Max concurrent legs",
        json_schema_extra=empty_means_none,
        description="Cap on simultaneous legs; empty (the default) = session limit minus dial-in endpoints.",
    )
    ready_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        le=600,
        title="Ready timeout (s)",
        description="How long to wait for the room's SIP dial-in endpoints before dialing anyone.",
    )
    deadline_seconds: float = Field(
        default=3600.0,
        gt=0,
        le=86400,
        title="Campaign deadline (s)",
        description="Hard stop for the whole campaign; legs still up are hung up.",
    )

    start_window_seconds: float | None = Field(
        default=None,
        gt=0,
        le=7 * 86400,
        title="Start window (s)",
        json_schema_extra=empty_means_none,
        description="A run that starts more than this many seconds after it was due (its scheduled "
        "time) dials nothing and ends Failed, saying when it was due and when it started. Empty (the "
        "default) = 300 s for runs a deployment's schedule created, no limit for any other run.",
    )

    _empty_is_none = field_validator("room", "max_concurrent_legs", "start_window_seconds", mode="before")(
        empty_to_none
    )

    @model_validator(mode="after")
    def _fits_together(self) -> Campaign:
        problems = []
        seen: dict[str, int] = {}
        hold = self.after_answer
        for i, target in enumerate(self.targets):
            if target._problem is not None:
                problems.append(f"targets.{i}.{target._problem.field}: {target._problem.message}")
                continue
            key = same_bridge_key(target.uri)
            if key in seen:
                problems.append(
                    f"targets.{i}.sip_uri: {target.uri} is also targets.{seen[key]}; "
                    "list each bridge once (raise redial.attempts to call it again)"
                )
            seen.setdefault(key, i)
            if hold.mode == "stay" and target.seconds_to_join() > hold.max_seconds:
                problems.append(
                    f"targets.{i}.join_confirm_seconds: the DTMF script and join confirmation take "
                    f"{target.seconds_to_join():.0f} s, longer than after_answer.max_seconds, so "
                    "raise max_seconds"
                )
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
        if hold.mode == "hang_up_after" and hold.hold_seconds > self.deadline_seconds:
            problems.append("after_answer.hold_seconds: longer than deadline_seconds; shorten it")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def leg_capacity_reserved(self) -> int:
        """Sessions of the limit the dial-in endpoints keep for callers."""
        return self.dial_in.num_endpoints if self.dial_in.enabled else 0

    @property
    def leg_capacity(self) -> int:
        return self.max_concurrent_legs or (self.session_limit - self.leg_capacity_reserved)


def same_bridge_key(sip_uri: str) -> str:
    """Two URIs dial the same bridge when this is equal: the user part keeps its case (RFC 3261
    19.1.4 compares it case-sensitively), scheme and host do not.

    >>> same_bridge_key("SIP:Bridge@Zoom.Example.com") == same_bridge_key("sip:Bridge@zoom.example.com")
    True
    >>> same_bridge_key("sip:Bridge@x.example.com") == same_bridge_key("sip:bridge@x.example.com")
    False
    """
    rest = sip_uri[4:]
    user, at, host = rest.partition("@")
    if not at:
        user, host = "", rest
    host, sep, tail = host.partition(";") if ";" in host.split("?", 1)[0] else host.partition("?")
    return f"sip:{user}{at}{host.lower()}{sep}{tail}"


class CampaignFileError(ValueError):
    """A campaign file that cannot be used; the message lists each bad field and its fix."""


def describe_errors(exc: Exception, *, skip_numbers: bool = False) -> list[str]:
    """One line per problem: ``field.path: what is wrong``."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return [str(exc)]
    lines = []
    for err in exc.errors():
        if skip_numbers and _is_number_for_text(err):
            continue
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if loc:
            lines.append(f"{loc}: {msg}")
        else:
            lines.extend(part.strip() for part in msg.split("; "))
    return lines


def read_campaign_text(path: Path) -> str:
    """The file's text, or `CampaignFileError` with one line naming what is wrong and the fix."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CampaignFileError(
            f"{path}: no such file; check the path (`daily-sip init` writes example campaigns)"
        ) from None
    except IsADirectoryError:
        raise CampaignFileError(f"{path}: is a directory; give the campaign file inside it") from None
    except PermissionError:
        raise CampaignFileError(
            f"{path}: cannot be read (permission denied); fix its permissions or copy it somewhere readable"
        ) from None
    except UnicodeDecodeError as exc:
        raise CampaignFileError(
            f"{path}: is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8"
        ) from None
    except OSError as exc:
        raise CampaignFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def load_campaign(path: str) -> Campaign:
    """Read a campaign from YAML or JSON (the same schema as the flow parameter) and validate it."""
    import yaml
    from pydantic import ValidationError

    text = read_campaign_text(Path(path))
    try:
        data = yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise CampaignFileError(f"{path}: not valid YAML/JSON{at}: {problem}") from None
    if not isinstance(data, dict):
        raise CampaignFileError(f"{path}: expected a mapping with at least 'targets'")
    try:
        return Campaign.model_validate(data)
    except ValidationError as exc:
        lines = "\n  ".join(_numbers_meant_as_text(exc, text) + describe_errors(exc, skip_numbers=True))
        raise CampaignFileError(f"{path}: campaign is not valid:\n  {lines}") from None


def _numbers_meant_as_text(exc: Exception, text: str) -> list[str]:
    """Fields given as an unquoted number where text is expected (``dtmf: 0123``), with the fix.

    YAML reads unquoted digits as a number, and a leading 0 as octal (0123 -> 83), so the value
    the model sees is not what the user wrote; the message shows the text as written.
    """
    lines = []
    for err in getattr(exc, "errors", list)():
        if not _is_number_for_text(err):
            continue
        loc = ".".join(str(p) for p in err["loc"])
        written = _written(text, err["loc"]) or str(err["input"])
        field = str(next((p for p in reversed(err["loc"]) if isinstance(p, str)), "value"))
        octal = " (a leading 0 even makes it octal)" if written.lstrip("+-").startswith("0") else ""
        lines.append(
            f"{loc}: YAML reads the unquoted {written} as the number {err['input']}{octal}; "
            f'quote it: {field}: "{written}"'
        )
    return lines


def _is_number_for_text(err: Mapping[str, object]) -> bool:
    return (
        err.get("type") == "string_type"
        and isinstance(err.get("input"), int | float)
        and not isinstance(err.get("input"), bool)
    )


def _written(text: str, loc: tuple) -> str | None:
    """The scalar at ``loc`` exactly as the file spells it (None if it cannot be found)."""
    import yaml

    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            node = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            continue  # a union member's tag in the location, not a step in the file
        if node is None:
            return None
    return node.value if isinstance(node, yaml.ScalarNode) else None
