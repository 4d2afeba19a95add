"""Dial-out legs carried by real SIP calls (``--sip-mode real``): what the far end does decides the
leg's states and webhooks, instead of the URI's user part.

The far end's final answer maps onto the outcomes of the telephony profiles (telephony.py), so the
webhooks keep the profile's shape: 486/600 busy; 408/480/487 or the ring timeout no answer;
404/484/604 not found; 603 declined; anything else (5xx, no route) unreachable. Under the
``sip-code`` profile `error_msg` carries the far end's own code and reason phrase. 180/183 make
the leg ring (``dialout.connected``), 200 answers it (``dialout.answered``), and a BYE from the
far end stops it (``dialout.stopped``). A dial-out stopped over REST sends CANCEL (ringing) or BYE
(answered); ``sendDTMF`` sends RFC 4733 telephone-events on the call's RTP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from daily_sip.tasks.events import DailyType

from .sip_uri import DEFAULT_OUTCOME, SipUri
from .telephony import script_for

if TYPE_CHECKING:
    from .dialout import Leg
    from .sip_real import SipStack


def outcome_for_code(code: int) -> str:
    """The telephony outcome of a far end's final non-2xx answer.

    >>> [outcome_for_code(c) for c in (486, 487, 404, 603, 503)]
    ['busy', 'noanswer', 'notfound', 'declined', 'unreachable']
    """
    if code in (486, 600):
        return "busy"
    if code in (408, 480, 487):
        return "noanswer"
    if code in (404, 484, 604):
        return "notfound"
    if code == 603:
        return "declined"
    return "unreachable"


class _LegListener:
    """Hands what PJSIP reports for one call to the call service (on the event loop)."""

    def __init__(self, service: RealSipMixin, leg: Leg) -> None:
        self.service = service
        self.leg = leg

    def ringing(self, code: int) -> None:
        self.service._real_ringing(self.leg, code)

    def answered(self) -> None:
        self.service._real_answered(self.leg)

    def ended(self, code: int, reason: str, was_answered: bool) -> None:
        self.service._real_ended(self.leg, code, reason, was_answered)


class RealSipMixin:
    """Part of `CallService`: places SIP dial-outs on a `SipStack` when one is attached."""

    sip: SipStack | None = None
    # Provided by CallService.
    config: Any
    clock: Any
    scheduler: Any
    event_log: Any

    def _place_real(self, leg: Leg, uri: SipUri) -> bool:
        """INVITE the far end for `leg`; False when no stack is attached (scripted mode)."""
        if self.sip is None:
            return False
        leg.outcome, leg.ivr = DEFAULT_OUTCOME, None  # the far end decides, not the user part
        self.sip.place(leg.id, uri.uri, _LegListener(self, leg), headers=uri.headers)
        leg.timer = self.scheduler.call_later(self.config.ring_timeout, lambda: self._real_ring_timeout(leg))
        return True

    def _hangup_real(self, leg: Leg) -> None:
        if self.sip is not None and leg.kind == "dialout":
            self.sip.hangup(leg.id)

    def _dtmf_real(self, leg: Leg, tones: str, duration_ms: int) -> None:
        if self.sip is not None and leg.kind == "dialout":
            self.sip.send_dtmf(leg.id, tones, duration_ms)

    def _real_ringing(self, leg: Leg, code: int) -> None:
        if leg.state != "dialing":
            return
        leg.state = "ringing"
        leg.sip_code = code
        leg.connected_at = self.clock.now()
        self.event_log.emit(DailyType.DIALOUT_CONNECTED, self._leg_payload(leg), leg)  # type: ignore[attr-defined]

    def _real_answered(self, leg: Leg) -> None:
        if leg.state not in ("dialing", "ringing"):
            return
        if leg.timer:
            leg.timer.cancel()
            leg.timer = None
        if leg.state == "dialing":  # a 200 without 180/183: Daily's connected still comes first
            self._real_ringing(leg, 200)
        self._dialout_answer(leg)  # type: ignore[attr-defined]

    def _real_ended(self, leg: Leg, code: int, reason: str, was_answered: bool) -> None:
        if not leg.active:
            return  # we ended it (REST stop, ring timeout, room gone)
        if was_answered:
            self.end_leg(leg, "remote-hangup")  # type: ignore[attr-defined]
            return
        self._end_real_unanswered(leg, code, reason)

    def _real_ring_timeout(self, leg: Leg) -> None:
        if leg.state not in ("dialing", "ringing"):
            return
        leg.timer = None
        self._hangup_real(leg)  # CANCEL
        self._end_real_unanswered(leg, 408, "Request Timeout")

    def _end_real_unanswered(self, leg: Leg, code: int, reason: str) -> None:
        script = script_for(self.config.telephony_profile, outcome_for_code(code))
        if script is None:  # every outcome_for_code() value is a failing one; kept for mypy
            return
        leg.outcome = outcome_for_code(code)
        if script.error_msg is not None and script.error_msg.startswith("SIP "):
            script = script._replace(error_msg=f"SIP {code} {reason}".strip())
        self._end_unanswered(leg, script._replace(sip_code=code))  # type: ignore[attr-defined]
