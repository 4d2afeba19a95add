"""Dial-out SIP URIs: parsing, validation, and the magic user parts that script a call's outcome.

Daily wants a `sipUri` that starts with `sip:` and whose query parameters are `X-` headers for
the INVITE (https://docs.daily.co/reference/rest-api/rooms/dialout/start). The user part (between
`sip:` and `@`) picks what the simulated far end does; the stand-in's README has the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from .errors import invalid
from .validation import PHONE_RE, check_str

#: User parts of a dial-out SIP URI that pick a scripted outcome (see README); how the failing
#: ones reach the webhooks depends on `--telephony-profile` (telephony.py).
MAGIC_OUTCOMES = ("noanswer", "notfound", "busy", "hangup", "declined", "unreachable")
DEFAULT_OUTCOME = "answer"


#: `ivr-<digits>`: an IVR bridge that wants the DTMF entry `<digits>#` (see README).
IVR_RE = re.compile(r"^ivr-([0-9]{1,32})(?:$|[^a-z0-9])", re.IGNORECASE)


def ivr_pin_for(user_part: str) -> str | None:
    """The PIN an `ivr-<digits>` user part asks for, e.g. `ivr-4711.zoom` -> `4711`; else None."""
    match = IVR_RE.match(user_part)
    return match.group(1) if match else None


def outcome_for(user_part: str) -> str:
    """Magic keyword chosen by a SIP user part: `busy`, `busy-2`, `noanswer.x`, `ivr-4711` ... else answer."""
    if ivr_pin_for(user_part) is not None:
        return "ivr"
    user = user_part.lower()
    for keyword in MAGIC_OUTCOMES:
        if user == keyword:
            return keyword
        if user.startswith(keyword):
            nxt = user[len(keyword)]
            if not (nxt.isascii() and nxt.isalnum()):
                return keyword
    return DEFAULT_OUTCOME


@dataclass
class SipUri:
    """The parts of a dial-out `sipUri` the stand-in cares about."""

    uri: str
    user: str
    host: str
    headers: dict[str, str]


def parse_sip_uri(uri: Any, path: str = "sipUri") -> SipUri:
    """Validate a dial-out SIP URI the way Daily documents it; 400 on anything off."""
    check_str(path, uri)
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in uri):
        raise invalid(f"'{path}' must not contain spaces or control characters")
    if not uri.lower().startswith("sip:"):
        raise invalid(f"'{path}' must start with 'sip:', got {uri!r}")
    rest = uri[4:]
    base, _, query = rest.partition("?")
    userinfo, at, hostpart = base.rpartition("@")
    if not at:
        userinfo, hostpart = "", base
    host = hostpart.split(";", 1)[0]
    if not host:
        raise invalid(f"'{path}' has no host: {uri!r}")
    user = userinfo.split(":", 1)[0].split(";", 1)[0]
    headers: dict[str, str] = {}
    if query:
        for part in query.split("&"):
            name, _, value = part.partition("=")
            if not name.lower().startswith("x-") or len(name) < 3:
                raise invalid(
                    f"'{path}' query parameter {name!r} is not allowed: parameters become SIP "
                    "headers and must be X- prefixed (e.g. ?X-My-Header=1)"
                )
            headers[name] = unquote(value)
    return SipUri(uri=uri, user=unquote(user), host=host, headers=headers)


def check_endpoint(path: str, v: Any) -> None:
    """A transfer target: a `sip:` URI or an E.164 number
    (https://docs.daily.co/reference/rest-api/rooms/callTransfer/sip-call-transfer)."""
    check_str(path, v)
    if v.lower().startswith("sip:"):
        parse_sip_uri(v, path)
    elif not PHONE_RE.match(v):
        raise invalid(f"'{path}' must be a sip: URI or an E.164 phone number, got {v!r}")
