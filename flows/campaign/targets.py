"""One bridge to dial (`Target`), the statuses a target can end in, and the form helpers they share.

Split from `campaign` because a target carries most of the rules: its SIP URI or bridge profile,
its DTMF script and its waits, all checked before the flow makes its first API call.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from daily_sip.flows.campaign.bridges import Bridge, BridgeError, BridgePlan, JoinVia, TeamsProvider, plan
from daily_sip.flows.campaign.dtmf import MAX_SCRIPT_SECONDS, DtmfScript, check_script, parse_script
from daily_sip.tasks.models.validators import (
    DisplayName,
    SipUriStr,
    check_sip_headers,
    check_sip_uri,
    sip_uri_with_headers,
)

# `ended_before_answer`: Daily stopped the call before any answer and said no more (busy, declined,
# unreachable and no answer can all look like that). `no_events`: the leg was started but no
# webhook event at all reached the run (see flows/dial/silence.py).
Outcome = Literal[
    "joined",
    "answered",
    "dropped_after_dtmf",
    "dtmf_failed",
    "busy",
    "no_answer",
    "rejected",
    "unreachable",
    "ended_before_answer",
    "failed",
    "no_events",
    "canceled",
    "unknown",
]
REDIALABLE = ("busy", "no_answer", "rejected", "unreachable", "ended_before_answer", "failed")
#: Statuses of a leg the far end picked up.
ANSWERED = ("joined", "answered", "dropped_after_dtmf", "dtmf_failed")


def _digits(value: object) -> object:
    # Invitations print IDs in groups ("845 1234 5678", "119 856 328 6").
    return value.replace(" ", "").replace("-", "") if isinstance(value, str) else value


def _check_meeting_id(value: str) -> str:
    if not value.isdigit() or not value.isascii() or len(value) > 32:
        raise ValueError(f"{value!r} is not a meeting ID: give its digits (spaces are ignored)")
    return value


def _check_passcode(value: str) -> str:
    if not value.isdigit() or not value.isascii() or len(value) > 32:
        raise ValueError(
            "must be digits, as DTMF carries only digits: use the numeric passcode "
            "'for phones and video systems' from the invitation"
        )
    return value


MeetingId = Annotated[str, BeforeValidator(_digits), AfterValidator(_check_meeting_id)]
Passcode = Annotated[str, BeforeValidator(_digits), AfterValidator(_check_passcode)]
DtmfScriptStr = Annotated[str, AfterValidator(check_script)]


def empty_to_none(value: object) -> object:
    """An optional field left empty in the form means "not set"."""
    return None if value == "" else value


def empty_means_none(schema: dict[str, Any]) -> None:
    """Show an optional field as a plain input (empty = not set), not as a "str / None" toggle."""
    branches = schema.pop("anyOf", None) or []
    real = [b for b in branches if b.get("type") != "null"]
    if len(real) == 1:
        schema.update(real[0])
    else:
        schema["anyOf"] = branches
    if schema.get("default", "") is None:
        del schema["default"]


class _Form(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Target(_Form):
    """One bridge to dial: a SIP URI, or a bridge profile with its meeting ID and passcode."""

    bridge: Bridge = Field(
        default="generic",
        title="Bridge profile",
        description="generic: dial sip_uri and send dtmf as given. zoom / webex / teams / pbx: build "
        "the address to dial and the DTMF script from meeting ID and passcode (docs/bridges.md).",
    )
    sip_uri: SipUriStr | None = Field(
        default=None,
        json_schema_extra=empty_means_none,
        title="SIP URI",
        description="Where to dial, e.g. sip:123456789@zoomcrc.com. Required for generic and pbx; "
        "for zoom / webex / teams it replaces the URI the profile builds.",
        examples=["sip:123456789@zoomcrc.com"],
    )
    meeting_id: MeetingId | None = Field(
        default=None,
        json_schema_extra=empty_means_none,
        title="Meeting ID",
        description="Zoom meeting ID, Webex meeting number, Teams VTC conference ID ('Video ID'), "
        "or the PBX conference number; digits, spaces are ignored.",
        examples=["84512345678"],
    )
    passcode: Passcode | None = Field(
        default=None,
        json_schema_extra=empty_means_none,
        title="Passcode",
        description="Numeric passcode / PIN (Zoom and Webex print one 'for phones and video "
        "systems' in the invitation).",
    )
    webex_site: str | None = Field(
        default=None,
        json_schema_extra=empty_means_none,
        title="Webex site",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]{0,99}$",
        description="webex: your site, e.g. 'acme' for acme.webex.com.",
    )
    teams_provider: TeamsProvider = Field(
        default="poly",
        title="Teams interop provider",
        description="teams: the Cloud Video Interop gateway in the invitation: poly (t.plcm.vc), "
        "cisco (m.webex.com) or pexip (your video domain).",
    )
    tenant_key: str | None = Field(
        default=None,
        json_schema_extra=empty_means_none,
        title="Teams tenant key",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]{0,99}$",
        description="teams: the tenant key (poly), subdomain (cisco) or video domain (pexip) from "
        "the invitation.",
    )
    sip_host: str | None = Field(
        default=None,
        json_schema_extra=empty_means_none,
        title="SIP host",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9.:-]{0,99}$",
        description="zoom / webex / teams: dial this host instead of the service's usual one "
        "(e.g. a regional Zoom connector IP from the invitation).",
    )
    join_via: JoinVia | None = Field(
        default=None,
        title="Join via",
        json_schema_extra=empty_means_none,
        description="uri: meeting ID / passcode in the address where the service supports it; "
        "dtmf: dial the service's IVR and send them as tones. Empty = the profile's default.",
    )
    display_name: DisplayName | None = Field(
        default=None,
        title="Display name",
        json_schema_extra=empty_means_none,
        description="Name shown in the Daily room for this leg (default: the URI's user part).",
    )
    dtmf: DtmfScriptStr | None = Field(
        default=None,
        title="DTMF script",
        json_schema_extra=empty_means_none,
        description="Tones to send once the bridge answers, with pauses: ',' = 1 s, 'w' = 0.5 s, "
        "'W' = 1 s, e.g. '123456789#,,,1234#'. Replaces the script the profile builds.",
        examples=["123456#"],
    )
    dtmf_delay_seconds: float | None = Field(
        default=None,
        ge=0,
        le=300,
        title="First prompt delay (s)",
        json_schema_extra=empty_means_none,
        description="Seconds from answer to the first tone (the IVR's greeting); "
        "empty = the profile's default (generic: 2).",
    )
    dtmf_digit_ms: int | None = Field(
        default=None,
        ge=50,
        le=2000,
        title="DTMF digit duration (ms)",
        json_schema_extra=empty_means_none,
        description="Daily's digitDurationMs, 50-2000; empty = Daily's default (500).",
    )
    join_confirm_seconds: float | None = Field(
        default=None,
        ge=0,
        le=600,
        title="Join confirmation (s)",
        json_schema_extra=empty_means_none,
        description="A bridge with a DTMF script is joined once it is still connected this long "
        "after the last tone; empty = the profile's default (generic: 10).",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        title="SIP X- headers",
        description='Custom headers for the INVITE, as JSON, e.g. {"X-Campaign": "monday-standup"}; '
        "names must start with 'X-'.",
        examples=[{"X-Campaign": "monday-standup"}],
    )
    _plan: BridgePlan | None = PrivateAttr(default=None)
    _problem: BridgeError | None = PrivateAttr(default=None)

    _empty_is_none = field_validator(
        "display_name",
        "dtmf",
        "sip_uri",
        "join_via",
        "meeting_id",
        "passcode",
        "webex_site",
        "tenant_key",
        "sip_host",
        mode="before",
    )(empty_to_none)

    # A field validator, so a bad header is reported as targets.N.headers, not targets.N.
    _headers_ok = field_validator("headers")(check_sip_headers)

    @model_validator(mode="after")
    def _build_plan(self) -> Target:
        try:
            built = plan(
                self.bridge,
                meeting_id=self.meeting_id,
                passcode=self.passcode,
                sip_uri=self.sip_uri,
                dtmf=self.dtmf,
                sip_host=self.sip_host,
                webex_site=self.webex_site,
                teams_provider=self.teams_provider,
                tenant_key=self.tenant_key,
                join_via=self.join_via,
                first_prompt_seconds=self.dtmf_delay_seconds,
                join_confirm_seconds=self.join_confirm_seconds,
            )
            check_sip_uri(built.sip_uri)
            if built.dtmf is not None:
                script = parse_script(built.dtmf)
                if script.duration(self.dtmf_digit_ms) > MAX_SCRIPT_SECONDS:
                    raise BridgeError(
                        "dtmf",
                        f"takes {script.duration(self.dtmf_digit_ms):.1f} s "
                        f"to send, at most {MAX_SCRIPT_SECONDS:.0f} s",
                    )
        except BridgeError as exc:
            # Reported by the campaign with the target's index, e.g. targets.2.meeting_id.
            self._problem = exc
            return self
        except ValueError as exc:
            self._problem = BridgeError("sip_uri", str(exc))
            return self
        sip_uri_with_headers(built.sip_uri, self.headers)  # the combined URI must still be valid
        self._plan = built
        return self

    @property
    def plan(self) -> BridgePlan:
        """The URI, script and waits this target is dialled with (its profile plus your overrides)."""
        if self._plan is None:
            raise self._problem or BridgeError("sip_uri", "no SIP URI")
        return self._plan

    @property
    def uri(self) -> str:
        return self.plan.sip_uri

    @property
    def script(self) -> DtmfScript | None:
        return parse_script(self.plan.dtmf) if self.plan.dtmf else None

    @property
    def dial_uri(self) -> str:
        return sip_uri_with_headers(self.uri, self.headers)

    def seconds_to_join(self) -> float:
        """Seconds from answer until this target's join is confirmed (0 without a script)."""
        script = self.script
        if script is None:
            return 0.0
        return (
            self.plan.first_prompt_seconds
            + script.duration(self.dtmf_digit_ms)
            + self.plan.join_confirm_seconds
        )
