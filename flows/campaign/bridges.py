"""Bridge profiles: the SIP URI and DTMF script of a conference bridge, from its meeting ID and passcode.

Each profile holds what its service publishes about joining from a SIP video system, and waits
we chose (first prompt delay, join confirmation time). docs/bridges.md gives the sources and says
which parts are assumptions; every value can be overridden per target (``sip_uri``, ``dtmf``,
``sip_host``, ``dtmf_delay_seconds``, ``join_confirm_seconds``).

* ``zoom``: Zoom's Conference Room Connector, ``<id>.<passcode>@zoomcrc.com`` (``join_via: uri``,
  no IVR), or ``<id>@zoomcrc.com`` then DTMF ``<passcode>#`` (``join_via: dtmf``);
* ``webex``: ``<meeting number>@<site>.webex.com``, then ``<numeric password>#`` when given;
* ``teams``: Microsoft Teams through a Cloud Video Interop gateway (``teams_provider``: Poly
  RealConnect, Cisco Webex Video Integration or Pexip), direct dial with the tenant key and VTC
  conference ID in the URI, or the gateway's IVR then DTMF ``<VTC ID>#``;
* ``pbx``: a PBX conference room (Asterisk ConfBridge, FreeSWITCH): your ``sip_uri``, then DTMF
  ``<conference number>#`` and, 2 s later, ``<PIN>#``;
* ``generic``: your ``sip_uri`` and ``dtmf`` as given.

Example:
    >>> p = plan("zoom", meeting_id="84512345678", passcode="123456")
    >>> p.sip_uri, p.dtmf
    ('sip:84512345678.123456@zoomcrc.com', None)
    >>> plan("zoom", meeting_id="84512345678", passcode="123456", join_via="dtmf").dtmf
    '123456#'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Bridge = Literal["generic", "zoom", "webex", "teams", "pbx"]
JoinVia = Literal["uri", "dtmf"]
TeamsProvider = Literal["poly", "cisco", "pexip"]


@dataclass(frozen=True)
class Profile:
    """Defaults of one kind of bridge (all waits are assumptions to tune; see docs/bridges.md)."""

    name: Bridge
    #: Seconds from answer to the first tone: the IVR's greeting has to finish first.
    first_prompt_seconds: float
    #: Seconds the call must stay up after the last tone to count as joined. An IVR that
    #: rejects a PIN hangs up a few seconds later, or re-prompts first (FreeSWITCH: 3 x 10 s).
    join_confirm_seconds: float
    #: How the meeting ID and passcode reach the bridge when the user does not say.
    join_via: JoinVia
    #: Pause between two IVR entries (conference number, then PIN).
    stage_pause: str = ",,"
    #: The service's SIP host when the user gives none.
    host: str | None = None


PROFILES: dict[str, Profile] = {
    "generic": Profile("generic", first_prompt_seconds=2.0, join_confirm_seconds=10.0, join_via="dtmf"),
    "zoom": Profile(
        "zoom", first_prompt_seconds=6.0, join_confirm_seconds=20.0, join_via="uri", host="zoomcrc.com"
    ),
    "webex": Profile("webex", first_prompt_seconds=5.0, join_confirm_seconds=20.0, join_via="dtmf"),
    "teams": Profile("teams", first_prompt_seconds=7.0, join_confirm_seconds=20.0, join_via="uri"),
    "pbx": Profile("pbx", first_prompt_seconds=3.0, join_confirm_seconds=15.0, join_via="dtmf"),
}

#: Cloud Video Interop gateways: host, direct-dial user part, IVR user part
#: (https://rc-docs.plcm.vc/docs/about, https://help.webex.com/en-us/article/nffx8kj/,
#: https://help.pexip.com/service/teams-integration.htm).
TEAMS_GATEWAYS: dict[str, tuple[str | None, str, str]] = {
    "poly": ("t.plcm.vc", "{tenant}.{vtc}", "{tenant}"),
    "cisco": ("m.webex.com", "{vtc}.{tenant}", "{tenant}"),
    "pexip": (None, "{vtc}", "teams"),  # the host is the customer's video domain (the tenant key)
}


class BridgeError(ValueError):
    """A profile that cannot be built: names the target field to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class BridgePlan:
    """What to dial and what to send, with the waits around it."""

    sip_uri: str
    dtmf: str | None
    first_prompt_seconds: float
    join_confirm_seconds: float


def _need(value: str | None, field: str, why: str) -> str:
    if not value:
        raise BridgeError(field, why)
    return value


def _entries(*entries: str | None, pause: str) -> str | None:
    """IVR entries, each ended by ``#``, with a pause between them."""
    given = [f"{e}#" for e in entries if e]
    return pause.join(given) or None


def plan(
    bridge: Bridge = "generic",
    *,
    meeting_id: str | None = None,
    passcode: str | None = None,
    sip_uri: str | None = None,
    dtmf: str | None = None,
    sip_host: str | None = None,
    webex_site: str | None = None,
    teams_provider: TeamsProvider = "poly",
    tenant_key: str | None = None,
    join_via: JoinVia | None = None,
    first_prompt_seconds: float | None = None,
    join_confirm_seconds: float | None = None,
) -> BridgePlan:
    """Build a target's SIP URI and DTMF script from its profile; a given ``sip_uri``/``dtmf`` wins.

    Raises `BridgeError` naming the missing or conflicting field.

    Example:
        >>> plan("webex", meeting_id="24357724034", passcode="77448755", webex_site="acme").sip_uri
        'sip:24357724034@acme.webex.com'
        >>> plan("teams", meeting_id="111962549", tenant_key="12345678").sip_uri
        'sip:12345678.111962549@t.plcm.vc'
        >>> plan("pbx", sip_uri="sip:conf@pbx.example.com", meeting_id="4711", passcode="1234").dtmf
        '4711#,,1234#'
    """
    profile = PROFILES[bridge]
    via = join_via or profile.join_via
    built_uri, built_dtmf = _build(
        profile, via, meeting_id, passcode, sip_uri, sip_host, webex_site, teams_provider, tenant_key
    )
    return BridgePlan(
        sip_uri=sip_uri or built_uri,
        dtmf=dtmf if dtmf is not None else built_dtmf,
        first_prompt_seconds=profile.first_prompt_seconds
        if first_prompt_seconds is None
        else first_prompt_seconds,
        join_confirm_seconds=profile.join_confirm_seconds
        if join_confirm_seconds is None
        else join_confirm_seconds,
    )


def _build(
    profile: Profile,
    via: JoinVia,
    meeting_id: str | None,
    passcode: str | None,
    sip_uri: str | None,
    sip_host: str | None,
    webex_site: str | None,
    teams_provider: TeamsProvider,
    tenant_key: str | None,
) -> tuple[str, str | None]:
    name = profile.name
    if name in ("generic", "pbx"):
        uri = _need(sip_uri, "sip_uri", f"the {name} profile dials the SIP URI you give, so add sip_uri")
        if name == "generic":
            return uri, None
        return uri, _entries(meeting_id, passcode, pause=profile.stage_pause)
    if name == "zoom":
        if sip_uri:  # the user's own dial string: the passcode can only go by DTMF
            return sip_uri, _entries(passcode, pause=profile.stage_pause)
        mid = _need(meeting_id, "meeting_id", "the zoom profile needs the meeting ID (or give sip_uri)")
        host = sip_host or profile.host
        if via == "uri" and passcode:
            return f"sip:{mid}.{passcode}@{host}", None
        return f"sip:{mid}@{host}", _entries(passcode, pause=profile.stage_pause)
    if name == "webex":
        if sip_uri:
            return sip_uri, _entries(passcode, pause=profile.stage_pause)
        mid = _need(meeting_id, "meeting_id", "the webex profile needs the meeting number (or give sip_uri)")
        if via == "uri" and passcode:
            raise BridgeError(
                "join_via",
                "Webex documents no way to put the password into the video address, "
                "so use join_via: dtmf (the default)",
            )
        host = sip_host or _webex_host(webex_site)
        return f"sip:{mid}@{host}", _entries(passcode, pause=profile.stage_pause)
    # teams
    if passcode:
        raise BridgeError(
            "passcode",
            "Teams video interop joins with the VTC conference ID alone "
            "(meeting_id), so leave passcode empty",
        )
    if sip_uri:
        return sip_uri, _entries(meeting_id, pause=profile.stage_pause) if via == "dtmf" else None
    vtc = _need(
        meeting_id,
        "meeting_id",
        "the teams profile needs the VTC conference ID "
        "('Video ID' in the invitation) as meeting_id (or give sip_uri)",
    )
    tenant = _need(
        tenant_key,
        "tenant_key",
        f"the teams profile with teams_provider {teams_provider} "
        "needs tenant_key (from the invitation's video-conferencing section)",
    )
    gw_host, direct, ivr = TEAMS_GATEWAYS[teams_provider]
    host = sip_host or gw_host or tenant
    if via == "uri":
        return f"sip:{direct.format(tenant=tenant, vtc=vtc)}@{host}", None
    return f"sip:{ivr.format(tenant=tenant, vtc=vtc)}@{host}", _entries(vtc, pause=profile.stage_pause)


def _webex_host(site: str | None) -> str:
    site = _need(
        site,
        "webex_site",
        "the webex profile needs your Webex site, e.g. 'acme' for "
        "acme.webex.com (or give sip_host or sip_uri)",
    )
    return site if "." in site else f"{site}.webex.com"
