"""How a failed dial-out reaches the webhooks: telephony profiles, JSON files, one per guess or recording.

Daily does not document how busy, no answer, declined or unreachable reach the webhooks:
``dialout.error`` is "fatal" with a free-text ``error_msg`` and ``dialout.stopped`` means "remote
end disconnected or stopped" (https://docs.daily.co/reference/rest-api/webhooks/events/dialout-error,
https://docs.daily.co/reference/rest-api/webhooks/events/dialout-stopped). Each built-in profile
(``profiles/*.json``, shipped with the package) is one guess; ``daily-sip doctor --dial`` writes a
profile recorded from a real Daily account in the same format, and ``daily-sip emulator
--telephony-profile PATH.json`` replays it. A client must report the right outcome, or an honestly
generic one, under every profile.

A profile file::

    {"format": "daily-sip/telephony-profile", "version": 1, "name": "sip-code",
     "base": "sip-code",                       # optional: outcomes not listed come from this one
     "outcomes": {"busy": {"events": ["dialout.error"], "error_msg": "SIP 486 Busy Here",
                           "sip_code": 486}, ...}}

An outcome's ``events`` are ``dialout.connected`` first or not, then ``dialout.error`` (with
``error_msg``) or ``dialout.stopped`` (without any ``answered``). ``noanswer`` ends after
``--ring-timeout``, ``declined`` after ``--answer-delay`` of ringing, the others right after
``--connect-delay``. Other keys (a recording's ``observation``) are kept for people, not replayed.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, NamedTuple

FORMAT = "daily-sip/telephony-profile"
PROFILE_DIR = Path(__file__).with_name("profiles")
BUILT_IN = ("sip-code", "free-text", "stopped", "connected-stopped")
FAILING = ("busy", "noanswer", "declined", "unreachable", "notfound")
#: The SIP status a failing outcome stands for when a recording carries none.
DEFAULT_SIP_CODES = {"busy": 486, "noanswer": 408, "declined": 603, "unreachable": 503, "notfound": 404}
#: The event sequences the stand-in can replay.
SEQUENCES = (
    ("dialout.error",),
    ("dialout.stopped",),
    ("dialout.connected", "dialout.error"),
    ("dialout.connected", "dialout.stopped"),
)


class Script(NamedTuple):
    connected_first: bool
    end: str  # "error" | "stopped"
    sip_code: int
    error_msg: str | None


def _script(where: str, outcome: str, entry: Any) -> Script:
    if outcome not in FAILING:
        raise ValueError(f"{where}: outcomes.{outcome}: not a failing outcome; one of {', '.join(FAILING)}")
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: outcomes.{outcome} must be an object with 'events'")
    events = tuple(entry.get("events") or ())
    if events not in SEQUENCES:
        shown = " | ".join(json.dumps(list(s)) for s in SEQUENCES)
        raise ValueError(
            f"{where}: outcomes.{outcome}.events is {list(events)}; the stand-in replays {shown}"
        )
    code = entry.get("sip_code") or DEFAULT_SIP_CODES[outcome]
    if not isinstance(code, int):
        raise ValueError(f"{where}: outcomes.{outcome}.sip_code must be an integer, got {code!r}")
    error_msg = entry.get("error_msg")
    if events[-1] == "dialout.error" and not isinstance(error_msg, str):
        error_msg = "dial-out failed"
    return Script(events[0] == "dialout.connected", events[-1].split(".")[1], code, error_msg)


def profile_path(name_or_path: str) -> Path:
    """The file of a built-in profile's name, else the path given."""
    return PROFILE_DIR / f"{name_or_path}.json" if name_or_path in BUILT_IN else Path(name_or_path)


@functools.cache
def load_profile(name_or_path: str) -> dict[str, Script]:
    """The scripts of a profile (a built-in name or a JSON file); ValueError names what is wrong.

    >>> load_profile("sip-code")["busy"]
    Script(connected_first=False, end='error', sip_code=486, error_msg='SIP 486 Busy Here')
    """
    path = profile_path(name_or_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(
            f"telephony_profile must be one of {', '.join(BUILT_IN)} or a profile JSON file "
            f"(daily-sip doctor --dial writes one), got {name_or_path!r}"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"telephony_profile {name_or_path!r}: cannot read it ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"telephony_profile {name_or_path!r}: not a {FORMAT} file (its 'format' field)")
    base = data.get("base")
    scripts = dict(load_profile(base)) if isinstance(base, str) and base != name_or_path else {}
    outcomes = data.get("outcomes") or {}
    if not isinstance(outcomes, dict):
        raise ValueError(f"telephony_profile {name_or_path!r}: 'outcomes' must be an object")
    for outcome, entry in outcomes.items():
        scripts[outcome] = _script(f"telephony_profile {name_or_path!r}", outcome, entry)
    return scripts


def profile_json(name_or_path: str) -> dict[str, Any]:
    """A profile file's whole content (a recording keeps its observation next to the outcomes)."""
    load_profile(name_or_path)  # validated first
    return json.loads(profile_path(name_or_path).read_text(encoding="utf-8"))


def script_for(profile: str, outcome: str) -> Script | None:
    """The script of a failing outcome under a profile; None for an outcome that answers."""
    return load_profile(profile).get(outcome)
