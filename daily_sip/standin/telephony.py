"""How a failed dial-out reaches the webhooks: several plausible encodings, one per profile.

Daily does not document how busy, no answer, declined or unreachable appear: ``dialout.error`` is
"fatal" with a free-text ``error_msg`` and ``dialout.stopped`` means "remote end disconnected or
stopped" (https://docs.daily.co/reference/rest-api/webhooks/events/dialout-error,
https://docs.daily.co/reference/rest-api/webhooks/events/dialout-stopped). Each profile here is one
guess; a client must report the right outcome, or an honestly generic one, under every profile.

A script is ``(connected_first, end, sip_code, error_msg)``: whether ``dialout.connected`` comes
first, then ``"error"`` (``dialout.error`` with ``error_msg``) or ``"stopped"`` (``dialout.stopped``
without any ``answered``). ``noanswer`` ends after ``--ring-timeout``, ``declined`` after
``--answer-delay`` of ringing, the others right after ``--connect-delay``.
"""

from __future__ import annotations

from typing import NamedTuple


class Script(NamedTuple):
    connected_first: bool
    end: str  # "error" | "stopped"
    sip_code: int
    error_msg: str | None


FAILING = ("busy", "noanswer", "declined", "unreachable", "notfound")

PROFILES: dict[str, dict[str, Script]] = {
    # A SIP status code and reason phrase in `error_msg` (the stand-in's original guess).
    "sip-code": {
        "busy": Script(False, "error", 486, "SIP 486 Busy Here"),
        "notfound": Script(False, "error", 404, "SIP 404 Not Found"),
        "unreachable": Script(False, "error", 503, "SIP 503 Service Unavailable"),
        "declined": Script(True, "error", 603, "SIP 603 Decline"),
        "noanswer": Script(True, "error", 408, "SIP 408 Request Timeout"),
    },
    # Free text only, no code; wording a client must not depend on.
    "free-text": {
        "busy": Script(False, "error", 486, "The called party is busy"),
        "notfound": Script(False, "error", 404, "Destination not found"),
        "unreachable": Script(False, "error", 503, "Could not reach the destination"),
        "declined": Script(True, "error", 603, "Call was declined by the remote party"),
        "noanswer": Script(True, "error", 408, "Call was not answered"),
    },
    # Only `dialout.stopped`, never an error: busy/unreachable without ringing first.
    "stopped": {
        "busy": Script(False, "stopped", 486, None),
        "notfound": Script(False, "stopped", 404, None),
        "unreachable": Script(False, "stopped", 503, None),
        "declined": Script(True, "stopped", 603, None),
        "noanswer": Script(True, "stopped", 408, None),
    },
    # Every failure rings first (`dialout.connected`), then `dialout.stopped`.
    "connected-stopped": {
        "busy": Script(True, "stopped", 486, None),
        "notfound": Script(True, "stopped", 404, None),
        "unreachable": Script(True, "stopped", 503, None),
        "declined": Script(True, "stopped", 603, None),
        "noanswer": Script(True, "stopped", 408, None),
    },
}


def script_for(profile: str, outcome: str) -> Script | None:
    """The script of a failing outcome under a profile; None for an outcome that answers."""
    return PROFILES[profile].get(outcome)
