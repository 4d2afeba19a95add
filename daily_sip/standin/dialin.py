"""Simulated SIP dial-in callers (`POST /_emulator/rooms/:name/dialin`).

Daily gives a room with the `sip` property one SIP endpoint per `num_endpoints`; each endpoint
takes one caller at a time, the caller emits `dialin.connected`, and every caller counts toward
`max_sip_pstn_sessions_per_room` (https://docs.daily.co/guides/products/dial-in-dial-out/sip,
https://docs.daily.co/reference/rest-api/webhooks/events/dialin-connected). A caller over the
limit is refused with `dialin.error`. Once connected, the caller is a leg like any other in
dialout.py (hang-up, DTMF, transfers).
"""

from __future__ import annotations

import uuid
from typing import Any

from daily_sip.tasks.events import DailyType

from .dialout import CODEC_FALLBACK, CallService, Leg
from .errors import ApiError
from .validation import check_int, check_keys, check_object, check_str


def simulate_dialin(calls: CallService, room_name: str, body: Any) -> Leg:
    """A SIP client dials one of the room's endpoints."""
    room = calls.room_service.get_room(room_name)
    body = check_object("body", body or {})
    check_keys("", body, {"endpoint_index", "from", "display_name", "sip_headers", "codecs"})
    if room.sip is None or not room.sip_endpoints:
        raise ApiError(409, "invalid-request-error", f"SIP dial-in is not enabled for room {room.name}")
    busy = {leg.endpoint for leg in room.sip_legs() if leg.kind == "dialin"}
    index = body.get("endpoint_index")
    if index is None:
        free = [i for i, ep in enumerate(room.sip_endpoints) if ep not in busy]
        if not free:
            raise ApiError(409, "invalid-request-error", "every SIP endpoint of the room is busy")
        index = free[0]
    check_int("endpoint_index", index, 0, len(room.sip_endpoints) - 1)
    endpoint = room.sip_endpoints[index]
    if endpoint in busy:
        raise ApiError(409, "invalid-request-error", f"endpoint {endpoint} already has a caller (486 Busy)")
    allow = (room.sip.get("dialin_config") or {}).get("allow_room_start") is True
    if room.session is None and not allow:
        raise ApiError(
            409,
            "invalid-request-error",
            f"room {room.name} is not hosting a call and sip.dialin_config.allow_room_start "
            "is not true, so the call would wait on hold",
        )
    sip_from = body.get("from") or "sip:+15550001111@pstn.standin.invalid"
    check_str("from", sip_from)
    display = body.get("display_name") or room.sip.get("display_name") or sip_from
    check_str("display_name", display)
    headers = body.get("sip_headers") or {}
    check_object("sip_headers", headers)
    caller_codecs = body.get("codecs")  # the audio codecs the caller can do
    if caller_codecs is not None and (
        not isinstance(caller_codecs, list) or not all(isinstance(c, str) for c in caller_codecs)
    ):
        raise ApiError(400, "invalid-request-error", "'codecs' must be a list of audio codec names")
    leg = Leg(
        id=str(uuid.uuid4()),
        room=room.name,
        kind="dialin",
        user_id=None,
        user_name=display,
        joined_at=calls.clock.now(),
        destination=endpoint,
        state="connected",
        sip_from=sip_from,
        endpoint=endpoint,
        sip_headers={str(k): str(v) for k, v in headers.items()},
        sip_code=200,
    )
    calls.legs[leg.id] = leg
    if len(room.sip_legs()) >= calls.config.session_limit:
        leg.state = "failed"
        leg.sip_code = 486
        leg.end_reason = "error"
        leg.ended_at = leg.joined_at
        leg.error_msg = "max_sip_pstn_sessions_per_room reached"
        calls.event_log.emit(DailyType.DIALIN_ERROR, calls.dialin_payload(leg, error_msg=leg.error_msg), leg)
        return leg
    leg.connected_at = leg.answered_at = calls.clock.now()
    calls.room_service.join(room, leg)
    calls.event_log.emit(DailyType.DIALIN_CONNECTED, calls.dialin_payload(leg), leg)
    if caller_codecs is not None:
        preferred = ((room.sip.get("codecs") or {}).get("audio") or [None])[0]
        if preferred is not None and preferred not in caller_codecs:
            # The caller cannot do the room's first codec: Daily falls back and says so
            # (https://docs.daily.co/reference/rest-api/webhooks/events/dialin-warning).
            calls.event_log.emit(
                DailyType.DIALIN_WARNING,
                calls.dialin_payload(leg, error_msg="Dialin " + CODEC_FALLBACK),
                leg,
            )
    return leg
