"""Call legs: dial-outs started over REST, simulated dial-in callers, and their lifecycle.

A leg is a `Participant` of its room from its start until it ends. Dial-out follows Daily's REST
endpoints (https://docs.daily.co/reference/rest-api/rooms/dialout): `dialOut/start` answers with a
`sessionId`, then the leg emits `dialout.connected`, `dialout.answered`, and ends with
`dialout.stopped` or `dialout.error`
(https://docs.daily.co/reference/rest-api/webhooks/events/dialout-connected); how it goes is scripted
by the SIP user part (sip_uri.py) and the configured delays. DTMF, `sipCallTransfer` and `sipRefer`
(https://docs.daily.co/reference/rest-api/rooms/callTransfer/sip-call-transfer) are only recorded
on the leg. Every active SIP/PSTN leg counts toward `max_sip_pstn_sessions_per_room`
(https://docs.daily.co/guides/products/dial-in-dial-out/sip). Simulated dial-in callers are
started in dialin.py and then live here like any other leg.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from daily_sip.tasks.events import DailyType

from .clock import Clock, Scheduler, TimerHandle, iso
from .config import EmulatorConfig
from .errors import NOT_HOSTING, ApiError, invalid, not_found
from .events import EventLog
from .rooms import Participant, Room, RoomService
from .sip_legs import RealSipMixin
from .sip_uri import (
    DEFAULT_OUTCOME,
    SipUri,
    ivr_pin_for,
    outcome_for,
    parse_sip_uri,
)
from .telephony import Script, script_for
from .transfers import TransferMixin
from .validation import (
    EXTENSION_RE,
    PHONE_RE,
    TONES_RE,
    UUID_RE,
    check_bool,
    check_codecs,
    check_int,
    check_keys,
    check_object,
    check_str,
)

ACTIVE_STATES = {"dialing", "ringing", "answered", "connected"}


@dataclass
class IvrState:
    """What an `ivr-<digits>` bridge heard: each `#`-ended entry, and its verdict.

    `state`: `waiting` (for the PIN) -> `accepted` (stays connected) | `rejected` (wrong entry,
    hangs up `ivr_reject_delay` later) | `timeout` (no entry within `ivr_timeout`, hangs up).
    """

    pin: str
    state: str = "waiting"
    entries: list[dict[str, Any]] = field(default_factory=list)
    pending: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"pin": self.pin, "state": self.state, "entries": list(self.entries), "pending": self.pending}


@dataclass
class Leg(Participant):
    """A SIP/PSTN leg: a dial-out started over REST or a simulated dial-in caller."""

    destination: str | None = None
    origin: str | None = None
    caller_id: str | None = None
    state: str = "dialing"
    outcome: str = DEFAULT_OUTCOME
    sip_code: int | None = None
    error_msg: str | None = None
    end_reason: str | None = None
    sip_headers: dict[str, str] = field(default_factory=dict)
    sip_from: str | None = None
    endpoint: str | None = None
    video: bool = False
    codecs: dict[str, Any] | None = None
    events: list[str] = field(default_factory=list)
    dtmf: list[dict[str, Any]] = field(default_factory=list)
    transfers: list[dict[str, Any]] = field(default_factory=list)
    ivr: IvrState | None = None
    connected_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    timer: TimerHandle | None = field(default=None, repr=False)
    idle_timer: TimerHandle | None = field(default=None, repr=False)
    # Someone other than a dial-out was in the room with this answered leg at some point: being
    # alone afterwards is "post-conversation" for `max_idle_timeout_post_conversation_sec`.
    had_company: bool = False

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "room": self.room,
            "kind": self.kind,
            "destination": self.destination,
            "origin": self.origin,
            "userId": self.user_id,
            "displayName": self.user_name,
            "callerId": self.caller_id,
            "state": self.state,
            "active": self.active,
            "outcome": self.outcome,
            "sip_code": self.sip_code,
            "error_msg": self.error_msg,
            "end_reason": self.end_reason,
            "sip_headers": self.sip_headers,
            "sip_from": self.sip_from,
            "endpoint": self.endpoint,
            "events": list(self.events),
            "dtmf": list(self.dtmf),
            "transfers": list(self.transfers),
            "ivr": self.ivr.to_json() if self.ivr else None,
            "created_at": iso(self.joined_at),
            "connected_at": iso(self.connected_at),
            "answered_at": iso(self.answered_at),
            "ended_at": iso(self.ended_at),
        }


DIALOUT_FIELDS = {
    "sipUri",
    "phoneNumber",
    "extension",
    "waitBeforeExtensionDialSec",
    "displayName",
    "userId",
    "callerId",
    "video",
    "videoSettings",
    "codecs",
    "permissions",
}
# Maximum `videoSettings` values (https://docs.daily.co/reference/rest-api/rooms/dialout/start).
VIDEO_SETTINGS_LIMITS = {"width": 1280, "height": 720, "fps": 30, "videoBitrate": 1000}
# No purchased number exists to show as a phone dial-out's `origin`; 555-01xx is fictional.
DEFAULT_PSTN_ORIGIN = "+15550100000"
# The telephone network carries narrowband audio only (Daily's PSTN default is PCMU/PCMA,
# https://docs.daily.co/reference/daily-js/instance-methods/start-dial-out): a phone dial-out
# asked for none of these still connects, with a `dialout.warning`.
PSTN_AUDIO_CODECS = {"PCMU", "PCMA"}
#: Daily's own wording for a codec fallback
#: (https://docs.daily.co/reference/rest-api/webhooks/events/dialin-warning).
CODEC_FALLBACK = "codec did not match, using fallback."


def validate_dialout(body: Any) -> dict[str, Any]:
    """Check a dialOut/start body; returns it plus the parsed `_sip` URI if any."""
    body = check_object("body", body)
    check_keys("", body, DIALOUT_FIELDS)
    has_sip = body.get("sipUri") is not None
    has_phone = body.get("phoneNumber") is not None
    if has_sip == has_phone:
        raise invalid("send exactly one of 'sipUri' or 'phoneNumber'")
    spec = dict(body)
    if has_sip:
        spec["_sip"] = parse_sip_uri(body["sipUri"])
    else:
        check_str("phoneNumber", body["phoneNumber"])
        if not PHONE_RE.match(body["phoneNumber"]):
            raise invalid(
                f"'phoneNumber' must be E.164 with country code (e.g. +15551234567), "
                f"got {body['phoneNumber']!r}"
            )
    if body.get("displayName") is not None:
        check_str("displayName", body["displayName"], 200)
    if body.get("userId") is not None:
        check_str("userId", body["userId"], 36)
    if body.get("callerId") is not None:
        check_str("callerId", body["callerId"])
        if not UUID_RE.match(body["callerId"]):
            raise invalid(
                "'callerId' must be the id (UUID) of a purchased phone number, "
                f"not the number itself; got {body['callerId']!r}"
            )
    if body.get("extension") is not None:
        check_str("extension", body["extension"])
        if not EXTENSION_RE.match(body["extension"]):
            raise invalid("'extension' must be 1-20 characters from 0-9 * #")
    if body.get("waitBeforeExtensionDialSec") is not None:
        check_int("waitBeforeExtensionDialSec", body["waitBeforeExtensionDialSec"], 0, 60)
    if body.get("video") is not None:
        check_bool("video", body["video"])
        if body["video"] and not has_sip:
            raise invalid("'video' is only supported when dialing a 'sipUri'")
    if body.get("videoSettings") is not None:
        if body.get("video") is not True:
            raise invalid("'videoSettings' requires 'video': true")
        vs = check_object("videoSettings", body["videoSettings"])
        check_keys("videoSettings", vs, set(VIDEO_SETTINGS_LIMITS))
        for key, hi in VIDEO_SETTINGS_LIMITS.items():
            if key in vs:
                check_int(f"videoSettings.{key}", vs[key], 1, hi)
    if body.get("codecs") is not None:
        check_codecs("codecs", body["codecs"])
    if body.get("permissions") is not None:
        check_object("permissions", body["permissions"])
    return spec


class CallService(TransferMixin, RealSipMixin):
    """Every SIP/PSTN leg of the domain and what happens to it over time.

    Public methods mirror the call endpoints and raise `ApiError` like Daily would; timers
    from `scheduler` move each dial-out through its scripted states.
    """

    def __init__(
        self,
        config: EmulatorConfig,
        clock: Clock,
        scheduler: Scheduler,
        event_log: EventLog,
        room_service: RoomService,
        domain_id: str,
    ) -> None:
        self.config = config
        self.clock = clock
        self.scheduler = scheduler
        self.event_log = event_log
        self.room_service = room_service
        self.domain_id = domain_id
        self.legs: dict[str, Leg] = {}
        room_service.on_members_changed = self._idle_check

    def reset(self) -> None:
        """Forget every leg without emitting events; pending timers are cancelled."""
        for leg in self.legs.values():
            if leg.timer:
                leg.timer.cancel()
        self.legs = {}

    def _leg_payload(self, leg: Leg, *, error_msg: str | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"timestamp": self.event_log.timestamp(), "session_id": leg.id}
        if leg.user_id is not None:
            payload["user_id"] = leg.user_id
        payload["domain_id"] = self.domain_id
        payload["room"] = leg.room
        if error_msg is not None:
            payload["error_msg"] = error_msg
            return payload
        payload["destination"] = leg.destination
        payload["origin"] = leg.origin
        if leg.caller_id is not None:
            payload["caller_id"] = leg.caller_id
        return payload

    def dialin_payload(self, leg: Leg, *, error_msg: str | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "timestamp": self.event_log.timestamp(),
            "session_id": leg.id,
            "domain_id": self.domain_id,
            "room": leg.room,
        }
        if error_msg is not None:
            payload["error_msg"] = error_msg
            return payload
        payload.update(
            {
                "sip_from": leg.sip_from,
                "display_name": leg.user_name,
                "sip_headers": leg.sip_headers,
            }
        )
        return payload

    def _check_capacity(self, room: Room) -> None:
        active = len(room.sip_legs())
        limit = self.config.session_limit
        if active >= limit:
            raise invalid(
                f"max_sip_pstn_sessions_per_room reached: room {room.name} already has "
                f"{active} active SIP/PSTN sessions (limit {limit})"
            )

    def start_dialout(self, room_name: str, body: Any) -> Leg:
        """REST dialOut/start: validate, check the room, create a leg and script it."""
        room = self.room_service.get_room(room_name)
        spec = validate_dialout(body)
        if not self.config.dialout_allowed:
            # Dial-out needs a paid account (https://docs.daily.co/docs/guides/features/dial-in-dial-out);
            # Daily does not document the error's wording, only its shape.
            raise ApiError(
                403,
                "forbidden-error",
                "dial-out is not available for this domain: it needs a paid plan with a payment method",
            )
        if room.properties.get("enable_dialout") is not True:
            raise ApiError(
                403,
                "forbidden-error",
                f"dial-out is not enabled for room {room.name}: set properties.enable_dialout to true",
            )
        allow_start = (room.properties.get("dialout_config") or {}).get("allow_room_start")
        if room.session is None and allow_start is not True:
            raise not_found(NOT_HOSTING)
        self._check_capacity(room)

        sip: SipUri | None = spec.get("_sip")
        if sip is not None:
            destination = sip.uri
            outcome = outcome_for(sip.user)
            default_name = sip.user or sip.host
            origin = (
                room.sip_endpoints[0]
                if room.sip_endpoints
                else f"sip:{room.name}.0@daily-{self.config.domain_name}-app.dapp.signalwire.com"
            )
        else:
            destination = spec["phoneNumber"]
            outcome = DEFAULT_OUTCOME
            default_name = destination
            origin = DEFAULT_PSTN_ORIGIN
        leg = Leg(
            id=str(uuid.uuid4()),
            room=room.name,
            kind="dialout",
            user_id=spec.get("userId"),
            user_name=spec.get("displayName") or default_name,
            joined_at=self.clock.now(),
            destination=destination,
            origin=origin,
            caller_id=spec.get("callerId"),
            outcome=outcome,
            sip_headers=dict(sip.headers) if sip else {},
            video=bool(spec.get("video")),
            codecs=spec.get("codecs"),
        )
        if outcome == "ivr" and sip is not None:
            leg.ivr = IvrState(pin=ivr_pin_for(sip.user) or "")
        self.legs[leg.id] = leg
        self.room_service.join(room, leg)
        if sip is not None and self._place_real(leg, sip):
            return leg
        leg.timer = self.scheduler.call_later(self.config.connect_delay, lambda: self._dialout_connect(leg))
        return leg

    def _dialout_connect(self, leg: Leg) -> None:
        if not leg.active:
            return
        script = script_for(self.config.telephony_profile, leg.outcome)
        if script is not None and not script.connected_first:
            self._end_unanswered(leg, script)
            return
        leg.state = "ringing"
        leg.sip_code = 180
        leg.connected_at = self.clock.now()
        self.event_log.emit(DailyType.DIALOUT_CONNECTED, self._leg_payload(leg), leg)
        self._warn_on_codec_fallback(leg)
        if script is not None:
            ring = self.config.ring_timeout if leg.outcome == "noanswer" else self.config.answer_delay
            leg.timer = self.scheduler.call_later(ring, lambda: self._end_unanswered(leg, script))
        else:
            leg.timer = self.scheduler.call_later(self.config.answer_delay, lambda: self._dialout_answer(leg))

    def _warn_on_codec_fallback(self, leg: Leg) -> None:
        """`dialout.warning` (non-fatal; payload like `dialout.connected`,
        https://docs.daily.co/reference/rest-api/webhooks/events/dialout-warning) when a phone
        dial-out asked only for audio codecs the telephone network cannot carry."""
        audio = (leg.codecs or {}).get("audio")
        if leg.destination is None or leg.destination.lower().startswith("sip:") or not audio:
            return
        if not PSTN_AUDIO_CODECS & set(audio):
            self.event_log.emit(DailyType.DIALOUT_WARNING, self._leg_payload(leg), leg)

    def _dialout_answer(self, leg: Leg) -> None:
        if leg.state != "ringing":
            return
        leg.state = "answered"
        leg.sip_code = 200
        leg.answered_at = self.clock.now()
        self.event_log.emit(DailyType.DIALOUT_ANSWERED, self._leg_payload(leg), leg)
        self._arm_idle_timeout(leg)
        if leg.outcome == "hangup":
            leg.timer = self.scheduler.call_later(
                self.config.hangup_after, lambda: self.end_leg(leg, "remote-hangup")
            )
        elif leg.ivr is not None:
            leg.timer = self.scheduler.call_later(self.config.ivr_timeout, lambda: self._ivr_timeout(leg))

    def _ivr_timeout(self, leg: Leg) -> None:
        if leg.ivr is not None and leg.ivr.state == "waiting":
            leg.ivr.state = "timeout"
            self.end_leg(leg, "remote-hangup")

    def _ivr_hear(self, leg: Leg, tones: str, at: float) -> None:
        """An IVR bridge collects digits until `#`; the PIN keeps the call, anything else ends it."""
        ivr = leg.ivr
        if ivr is None:
            return
        for tone in tones:
            if ivr.state != "waiting":
                return  # tones after the verdict are in-meeting DTMF: only recorded on the leg
            if tone != "#":
                ivr.pending += tone
                continue
            entry, ivr.pending = ivr.pending, ""
            ok = entry == ivr.pin
            ivr.entries.append({"digits": entry, "accepted": ok, "at": iso(at), "ts": at})
            if leg.timer:
                leg.timer.cancel()
                leg.timer = None
            if ok:
                ivr.state = "accepted"
            else:
                ivr.state = "rejected"
                leg.timer = self.scheduler.call_later(
                    self.config.ivr_reject_delay, lambda: self.end_leg(leg, "remote-hangup")
                )

    def _end_unanswered(self, leg: Leg, script: Script) -> None:
        """End a failing leg the way the telephony profile encodes it (telephony.py)."""
        if script.end == "error":
            self._fail_leg(leg, script.sip_code, script.error_msg or "dial-out failed")
            return
        leg.timer = None
        self.end_leg(leg, "remote-rejected")
        leg.sip_code = script.sip_code

    def _arm_idle_timeout(self, leg: Leg) -> None:
        room = self.room_service.rooms.get(leg.room)
        if room is not None:
            self._idle_check(room)

    def _idle_check(self, room: Room) -> None:
        """Apply ``dialout_config.max_idle_timeout_sec`` after every change of who is in the room.

        Daily: the seconds a dial-out user may be alone in the room, "if he joins the room first and
        waiting for others to join or remains alone after all web users leave the room"; default 0
        (https://docs.daily.co/reference/rest-api/rooms/config). Alone means no browser user or
        dial-in caller (other dial-outs do not count); the clock starts at the answer, stops as
        soon as someone joins, and starts again when the last of them leaves, then with
        ``max_idle_timeout_post_conversation_sec`` when that is set (Daily's generated spec,
        github.com/daily-co/daily-ruby ``docs/RoomPropertiesDialoutConfig.md``).
        ``--no-enforce-idle-default`` leaves an unset timeout unapplied.
        """
        company = any(p.kind != "dialout" for p in room.participants.values())
        config = room.properties.get("dialout_config") or {}
        for leg in list(room.sip_legs()):
            if leg.kind != "dialout" or leg.state != "answered":
                continue
            if company:
                leg.had_company = True
                if leg.idle_timer:
                    leg.idle_timer.cancel()
                    leg.idle_timer = None
                continue
            if leg.idle_timer is not None:
                continue
            timeout = config.get("max_idle_timeout_sec")
            post = config.get("max_idle_timeout_post_conversation_sec")
            if leg.had_company and post is not None:
                timeout = post
            if timeout is None:
                if not self.config.enforce_idle_default:
                    continue
                timeout = 0
            leg.idle_timer = self.scheduler.call_later(float(timeout), self._idle_expire(leg))

    def _idle_expire(self, leg: Leg) -> Callable[[], None]:
        def expire() -> None:
            leg.idle_timer = None
            if leg.state == "answered":
                self.end_leg(leg, "idle-timeout")

        return expire

    def _fail_leg(self, leg: Leg, code: int, message: str) -> None:
        if not leg.active:
            return
        leg.state = "failed"
        leg.sip_code = code
        leg.error_msg = message
        leg.end_reason = "error"
        leg.ended_at = self.clock.now()
        leg.timer = None
        if leg.kind == "dialout":
            self.event_log.emit(DailyType.DIALOUT_ERROR, self._leg_payload(leg, error_msg=message), leg)
        else:
            self.event_log.emit(DailyType.DIALIN_ERROR, self.dialin_payload(leg, error_msg=message), leg)
        room = self.room_service.rooms.get(leg.room)
        if room is not None:
            self.room_service.leave(room, leg)

    def end_leg(self, leg: Leg, reason: str) -> None:
        """Stop an active leg (any side hung up) and emit its `*.stopped` event."""
        if not leg.active:
            return
        self._hangup_real(leg)
        for timer in (leg.timer, leg.idle_timer):
            if timer:
                timer.cancel()
        leg.timer = leg.idle_timer = None
        if leg.state in ("dialing", "ringing") and leg.kind == "dialout":
            leg.sip_code = 487  # the INVITE was cancelled before an answer
        leg.state = "stopped"
        leg.end_reason = reason
        leg.ended_at = self.clock.now()
        if leg.kind == "dialout":
            self.event_log.emit(DailyType.DIALOUT_STOPPED, self._leg_payload(leg), leg)
        else:
            self.event_log.emit(DailyType.DIALIN_STOPPED, self.dialin_payload(leg), leg)
        room = self.room_service.rooms.get(leg.room)
        if room is not None:
            self.room_service.leave(room, leg)

    def _session_field(self, body: dict[str, Any]) -> str:
        sid = body.get("sessionId")
        if sid is None:
            raise invalid("'sessionId' is required")
        check_str("sessionId", sid)
        return sid

    def _leg_in_room(self, room: Room, session_id: str, kinds: tuple[str, ...]) -> Leg | None:
        leg = self.legs.get(session_id)
        if leg is None or leg.room != room.name or leg.kind not in kinds or not leg.active:
            return None
        return leg

    def stop_dialout(self, room_name: str, body: Any) -> dict[str, Any]:
        """REST dialOut/stop."""
        room = self.room_service.get_room(room_name)
        body = check_object("body", body)
        check_keys("", body, {"sessionId"})
        sid = self._session_field(body)
        if room.session is None:
            raise not_found(NOT_HOSTING)
        leg = self._leg_in_room(room, sid, ("dialout",))
        if leg is None:
            raise not_found("No dialout to stop")
        self.end_leg(leg, "api-stop")
        return {"ok": True}

    def send_dtmf(self, room_name: str, body: Any) -> dict[str, Any]:
        """REST dialOut/sendDTMF: recorded on the leg when it is answered."""
        room = self.room_service.get_room(room_name)
        body = check_object("body", body)
        check_keys("", body, {"sessionId", "tones", "digitDurationMs"})
        sid = self._session_field(body)
        tones = body.get("tones")
        if tones is None:
            raise invalid("'tones' is required")
        check_str("tones", tones)
        if not TONES_RE.match(tones):
            raise invalid(f"'tones' must be 1-20 characters from 0-9 A-D * #, got {tones!r}")
        duration = body.get("digitDurationMs", 500)
        check_int("digitDurationMs", duration, 50, 2000)
        if room.session is None:
            raise not_found(NOT_HOSTING)
        leg = self._leg_in_room(room, sid, ("dialout", "dialin"))
        if leg is None:
            raise not_found("No session running")
        if leg.state not in ("answered", "connected"):
            raise invalid(
                f"session {sid} has not been answered yet (state {leg.state}); "
                "DTMF can only be sent to an answered call"
            )
        now = self.clock.now()
        leg.dtmf.append({"tones": tones, "digitDurationMs": duration, "at": iso(now), "ts": now})
        self._ivr_hear(leg, tones, now)
        self._dtmf_real(leg, tones, duration)
        return {"ok": True}

    def hangup(self, leg_id: str) -> Leg:
        """The far end of a leg hangs up."""
        leg = self.legs.get(leg_id)
        if leg is None:
            raise not_found(f"leg {leg_id} not found")
        if not leg.active:
            raise ApiError(409, "invalid-request-error", f"leg {leg_id} already ended ({leg.state})")
        self.end_leg(leg, "remote-hangup")
        return leg
