"""A dial-out recording as a telephony profile: what Daily did, with keys and identifiers redacted.

The file is the stand-in's profile format (``daily_sip.standin.telephony``): its ``outcomes``
replay with ``daily-sip emulator --telephony-profile PATH.json``; its ``observation`` keeps what a
person needs to answer the open questions (event order and timing, ``error_msg`` texts, presence
lag and the id the leg is listed under, payload shapes, the unit of ``X-Webhook-Timestamp``, the
answers to ``dialOut/start`` and ``dialOut/stop``). Identifiers (session, user, room, domain,
participant ids, the dialled URI, caller ids, signatures) become placeholders such as
``<session-1>``; nothing secret is ever in a recording (the API key is not, webhook secrets are not).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlsplit

from daily_sip.standin.telephony import DEFAULT_SIP_CODES, FORMAT, SEQUENCES

from .dial import TERMINAL, Recording, is_leg

#: The stand-in outcome each scenario's recording stands for (answer-hangup answers: no script).
SCENARIO_OUTCOME = {"busy": "busy", "no-answer": "noanswer"}
_SIP_CODE = re.compile(r"\b([3-6]\d\d)\b")
#: Headers whose values say something about Daily and nothing about the account.
_KEEP_HEADERS = ("content-type", "user-agent", "content-encoding")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)


class Redactor:
    """Replaces each known identifier (and any other UUID) by a stable placeholder."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.counts: dict[str, int] = {}

    def know(self, kind: str, value: Any) -> None:
        if isinstance(value, str) and value and value not in self.names:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            self.names[value] = f"<{kind}-{self.counts[kind]}>"

    def text(self, value: str) -> str:
        for raw in sorted(self.names, key=len, reverse=True):
            value = value.replace(raw, self.names[raw])
        return _UUID.sub(lambda m: self._new("id", m.group(0)), value)

    def _new(self, kind: str, raw: str) -> str:
        self.know(kind, raw)
        return self.names[raw]

    def data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.data(v) for v in value]
        return value


def shape(value: Any) -> Any:
    """A value's shape: the JSON type names, nested objects kept.

    >>> shape({"session_id": "x", "timestamp": "1728023426", "ok": True, "n": 1.5, "tags": ["a"]})
    {'session_id': 'str', 'timestamp': 'str', 'ok': 'bool', 'n': 'float', 'tags': ['str']}
    """
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__ if value is not None else "null"


def _timestamp_unit(headers: dict[str, str], received_unix: float) -> str:
    stamp = headers.get("x-webhook-timestamp")
    if not stamp:
        return "absent"
    try:
        number = float(stamp)
    except ValueError:
        return f"not a number ({len(stamp)} characters)"
    for unit, factor in (("seconds", 1.0), ("milliseconds", 1000.0)):
        if abs(number / factor - received_unix) < 3600:
            return unit
    return f"unknown ({len(stamp.split('.')[0])} digits)"


def _redactor(rec: Recording) -> Redactor:
    red = Redactor()
    red.know("session", rec.session_id)
    red.know("user", rec.user_id)
    red.know("room", rec.room)
    red.know("domain", rec.domain_id)
    red.know("destination", rec.destination)
    for e in rec.events:
        payload = e["envelope"].get("payload") or {}
        for key in ("session_id", "user_id", "domain_id", "room", "origin", "caller_id", "destination"):
            red.know(key.replace("_", "-"), payload.get(key))
        red.know("event", e["envelope"].get("id"))
    for snap in rec.presence:
        for person in snap["data"]:
            for key in ("id", "mtgSessionId", "mtg_session_id"):
                red.know("participant", person.get(key))
    return red


def _presence(rec: Recording) -> dict[str, Any]:
    listed = [s for s in rec.presence if any(is_leg(p, rec) for p in s["data"])]
    first = listed[0] if listed else None
    leg = next((p for p in first["data"] if is_leg(p, rec)), None) if first else None
    end = next((e["after_s"] for e in rec.events if e["type"] in TERMINAL), None)
    # The first snapshot, after the end, that no longer lists a leg presence had listed.
    last_listed = listed[-1]["after_s"] if listed else None
    gone = next(
        (
            s["after_s"]
            for s in rec.presence
            if end is not None and last_listed is not None and s["after_s"] > max(end, last_listed)
        ),
        None,
    )
    answered = rec.first("dialout.answered")
    return {
        "leg_listed": leg is not None,
        "listed_under": None
        if leg is None
        else [
            how
            for how, hit in (
                ("id == sessionId", leg.get("id") == rec.session_id),
                ("userId", rec.user_id in (leg.get("userId"), leg.get("user_id"))),
                ("userName", rec.display_name in (leg.get("userName"), leg.get("user_name"))),
            )
            if hit
        ],
        "first_listed_after_s": first["after_s"] if first else None,
        "listed_before_answer": bool(first and (answered is None or first["after_s"] < answered)),
        "gone_after_end_s": round(gone - end, 3) if gone is not None and end is not None else None,
        "participant_shape": shape(leg) if leg else None,
        "polls": len(rec.presence),
        "timeline": [
            {
                "after_s": s["after_s"],
                "status": s["status"],
                "participants": len(s["data"]),
                "leg_listed": any(is_leg(p, rec) for p in s["data"]),
            }
            for s in rec.presence
        ],
    }


def _timings(rec: Recording) -> dict[str, float | None]:
    """Seconds from the ``dialOut/start`` request to each first event, and from our stop to Daily's
    ``dialout.stopped`` (None where it did not happen)."""
    out: dict[str, float | None] = {
        t: rec.first(t) for t in ("dialout.connected", "dialout.answered", "dialout.stopped", "dialout.error")
    }
    stop = next((s["after_s"] for s in rec.stops if s["when"] == "while up" and s.get("status") == 200), None)
    stopped = rec.first("dialout.stopped")
    out["stop_to_stopped_event"] = (
        round(stopped - stop, 3) if stop is not None and stopped is not None else None
    )
    return out


def _outcome(rec: Recording) -> tuple[dict[str, Any], str | None]:
    """The replayable script of a failing scenario, or why there is none."""
    outcome = SCENARIO_OUTCOME.get(rec.scenario or "")
    if outcome is None:
        return {}, "no failing --scenario (busy or no-answer) was recorded"
    ended = next((e["after_s"] for e in rec.events if e["type"] in TERMINAL), None)
    ours = next((s["after_s"] for s in rec.stops if s["when"] == "while up"), None)
    if ours is not None and (ended is None or ours <= ended):
        return {}, (
            f"the call was still up when the doctor stopped it ({ours:.0f} s after the start): how it "
            "ended is the doctor's stop, not Daily's encoding of the scenario; dial again with a longer "
            "--max-seconds"
        )
    dialout = [t for t in rec.event_types() if t.startswith("dialout.")]
    events = tuple(dict.fromkeys(dialout))  # Daily may deliver twice; the sequence is what counts
    if events not in SEQUENCES:
        return {}, f"the recorded dialout events {list(events)} are not a sequence the stand-in replays"
    error = next(
        (
            e["envelope"].get("payload", {}).get("error_msg")
            for e in rec.events
            if e["type"] == "dialout.error"
        ),
        None,
    )
    code = _SIP_CODE.search(error or "")
    entry: dict[str, Any] = {
        "events": list(events),
        "sip_code": int(code.group(1)) if code else DEFAULT_SIP_CODES[outcome],
    }
    if error is not None:
        entry["error_msg"] = error
    return {outcome: entry}, None


def build(rec: Recording, api_url: str) -> dict[str, Any]:
    """The fingerprint (a telephony profile) of one recording, redacted."""
    red = _redactor(rec)
    outcomes, why_not = _outcome(rec)
    events = [
        {
            "type": e["type"],
            "after_s": e["after_s"],
            "payload_shape": shape(e["envelope"].get("payload")),
            "envelope_shape": shape({k: v for k, v in e["envelope"].items() if k != "payload"}),
            "error_msg": (e["envelope"].get("payload") or {}).get("error_msg"),
            "headers": sorted(e["headers"]),
            "header_values": {k: v for k, v in e["headers"].items() if k in _KEEP_HEADERS},
            "timestamp_unit": _timestamp_unit(e["headers"], e["received_unix"]),
            "signature_ok": e["signature_ok"],
            "non_ascii_escaped": e["non_ascii_escaped"],
        }
        for e in rec.events
    ]
    start = {k: v for k, v in rec.start.items() if k != "body"}
    start["body_shape"] = shape(rec.start.get("body"))
    stops = [
        {k: v for k, v in s.items() if k != "body"} | {"body_shape": shape(s.get("body"))} for s in rec.stops
    ]
    profile = {
        "format": FORMAT,
        "version": 1,
        "name": f"recorded-{rec.scenario or 'dial'}",
        "source": "daily-sip doctor --dial",
        "recorded_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "api_host": urlsplit(api_url).hostname,
        "scenario": rec.scenario,
        "base": "sip-code",
        "outcomes": red.data(outcomes),
        "not_replayable": why_not,
        "observation": red.data(
            {
                "event_sequence": rec.event_types(),
                "events": events,
                "presence": _presence(rec),
                "timings_s": _timings(rec),
                "dialout_start": start,
                "dialout_stop": stops,
                "deliveries_for_other_rooms": rec.other_rooms,
                "pings": rec.pings,
            }
        ),
    }
    return profile


def raw(rec: Recording) -> dict[str, Any]:
    """Everything recorded, unredacted, for the user's own eyes (not to be sent): every webhook body
    and header as it arrived (an ``Authorization`` header, Daily's basicAuth, is left out), every
    presence snapshot, the start and stop answers."""
    return {
        "destination": rec.destination,
        "room": rec.room,
        "session_id": rec.session_id,
        "user_id": rec.user_id,
        "dialout_start": rec.start,
        "dialout_stop": rec.stops,
        "events": [
            {
                "after_s": e["after_s"],
                "headers": {k: v for k, v in e["headers"].items() if k != "authorization"},
                "body": e["envelope"],
                "signature_ok": e["signature_ok"],
            }
            for e in rec.events
        ],
        "presence": rec.presence,
    }
