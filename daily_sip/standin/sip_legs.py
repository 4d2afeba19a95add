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

import asyncio
import concurrent.futures
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


def _bare_uri(uri: str) -> str:
    """`"Bob" <sip:bob@h>;tag=x` -> `sip:bob@h`."""
    if "<" in uri:
        uri = uri.split("<", 1)[1].split(">", 1)[0]
    return uri.split(";", 1)[0]


def _user_part(uri: str) -> str:
    """`<sip:abc@host:5070>` -> `abc`.

    >>> _user_part('"x" <sip:Abc@h.example:5070;transport=udp>')
    'abc'
    """
    bare = _bare_uri(uri)
    bare = bare.split(":", 1)[1] if ":" in bare else bare
    return bare.split("@", 1)[0].lower() if "@" in bare else ""


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
    #: Dial-in leg id -> the SIP stack's key of its call.
    _dialin_calls: dict[str, str]
    # Provided by CallService.
    config: Any
    clock: Any
    scheduler: Any
    event_log: Any

    def attach_sip(self, stack: SipStack, loop: asyncio.AbstractEventLoop) -> None:
        """Place SIP dial-outs on `stack` and take the dial-ins it receives (decided on `loop`)."""
        self.sip = stack
        self._dialin_calls = {}

        def decide(key: str, to_uri: str, from_uri: str) -> tuple[int, Any]:
            done: concurrent.futures.Future[tuple[int, Any]] = concurrent.futures.Future()

            def run() -> None:
                try:
                    done.set_result(self._real_dialin(key, to_uri, from_uri))
                except Exception as exc:
                    done.set_exception(exc)

            loop.call_soon_threadsafe(run)
            try:
                return done.result(timeout=5)
            except Exception:
                return 500, None

        stack.on_dialin = decide

    def _real_dialin(self, key: str, to_uri: str, from_uri: str) -> tuple[int, Any]:
        """A SIP client calls `to_uri`: the room whose endpoint has that user part takes it, one
        caller per endpoint (https://docs.daily.co/guides/products/dial-in-dial-out/sip)."""
        from .dialin import simulate_dialin  # dialin.py imports this module's user, dialout.py
        from .errors import ApiError

        user = _user_part(to_uri)
        found = [
            (room.name, i)
            for room in self.room_service.rooms.values()  # type: ignore[attr-defined]
            for i, endpoint in enumerate(room.sip_endpoints)
            if _user_part(endpoint) == user
        ]
        if not found:
            return 404, None
        room_name, index = found[0]
        body = {"endpoint_index": index, "from": _bare_uri(from_uri)}
        try:
            leg = simulate_dialin(self, room_name, body)  # type: ignore[arg-type]
        except ApiError as exc:
            return (486 if "busy" in exc.info.lower() or "already" in exc.info else 480), None
        if not leg.active:  # over max_sip_pstn_sessions_per_room: dialin.error was emitted
            return 486, None
        self._dialin_calls[leg.id] = key
        return 200, _LegListener(self, leg)

    def _place_real(self, leg: Leg, uri: SipUri) -> bool:
        """INVITE the far end for `leg`; False when no stack is attached (scripted mode)."""
        if self.sip is None:
            return False
        leg.outcome, leg.ivr = DEFAULT_OUTCOME, None  # the far end decides, not the user part
        self.sip.place(leg.id, uri.uri, _LegListener(self, leg), headers=uri.headers)
        leg.timer = self.scheduler.call_later(self.config.ring_timeout, lambda: self._real_ring_timeout(leg))
        return True

    def _hangup_real(self, leg: Leg) -> None:
        if self.sip is None:
            return
        if leg.kind == "dialout":
            self.sip.hangup(leg.id)
        elif leg.id in self._dialin_calls:
            self.sip.hangup(self._dialin_calls.pop(leg.id))

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
        if leg.kind == "dialin":
            self._dialin_calls.pop(leg.id, None)
            self.end_leg(leg, "remote-hangup")  # type: ignore[attr-defined]
            return
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
