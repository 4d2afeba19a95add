"""Call transfers of a live leg: Daily-bridged ``sipCallTransfer`` and ``sipRefer``.

Both are recorded on the leg and move the SIP user out of the room: ``participant.left`` and
``dialout.stopped`` / ``dialin.stopped`` fire in the room, and ``calltransfer.triggered``,
``.initiated``, ``.answered``, ``.completed`` report the transfer
(https://docs.daily.co/docs/guides/features/dial-in-dial-out/transfers,
https://docs.daily.co/reference/rest-api/webhooks/events/calltransfer-triggered,
https://docs.daily.co/reference/rest-api/webhooks/events/calltransfer-initiated: "the SIP user is
removed from the room"). A mixin of `dialout.CallService`, kept apart because transfers are their
own Daily API area.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .clock import iso
from .errors import NOT_HOSTING, invalid, not_found
from .sip_uri import check_endpoint, outcome_for
from .validation import EXTENSION_RE, UUID_RE, check_int, check_keys, check_object, check_str

if TYPE_CHECKING:
    from .dialout import Leg


class TransferMixin:
    """The transfer endpoints of `dialout.CallService` (uses its rooms, legs, clock and events)."""

    def _transfer_target(self, room_name: str, sid: str) -> Leg:
        room = self.room_service.get_room(room_name)
        if room.session is None:
            raise not_found(NOT_HOSTING)
        leg = self._leg_in_room(room, sid, ("dialout", "dialin"))
        if leg is None:
            raise not_found("invalid sessionId")
        if leg.state not in ("answered", "connected"):
            raise invalid(
                f"session {sid} has not been answered yet (state {leg.state}); "
                "only an answered call can be transferred"
            )
        return leg

    def sip_call_transfer(self, room_name: str, body: Any) -> dict[str, Any]:
        """REST sipCallTransfer: recorded on the leg, which then leaves the room."""
        self.room_service.get_room(room_name)
        body = check_object("body", body)
        check_keys(
            "",
            body,
            {"sessionId", "toEndPoint", "callerId", "extension", "waitBeforeExtensionDialSec"},
        )
        sid = self._session_field(body)
        if body.get("toEndPoint") is None:
            raise invalid("'toEndPoint' is required")
        check_endpoint("toEndPoint", body["toEndPoint"])
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
        wait = body.get("waitBeforeExtensionDialSec", 0)
        check_int("waitBeforeExtensionDialSec", wait, 0, 60)
        leg = self._transfer_target(room_name, sid)
        now = self.clock.now()
        leg.transfers.append(
            {
                "kind": "sipCallTransfer",
                "toEndPoint": body["toEndPoint"],
                "callerId": body.get("callerId"),
                "extension": body.get("extension"),
                "waitBeforeExtensionDialSec": wait,
                "at": iso(now),
            }
        )
        self._transfer_events(leg, body["toEndPoint"], is_sip_refer=False)
        return {"ok": True}

    def sip_refer(self, room_name: str, body: Any) -> dict[str, Any]:
        """REST sipRefer: recorded on the leg, which then leaves the room."""
        self.room_service.get_room(room_name)
        body = check_object("body", body)
        check_keys("", body, {"sessionId", "toEndPoint"})
        sid = self._session_field(body)
        if body.get("toEndPoint") is None:
            raise invalid("'toEndPoint' is required")
        check_endpoint("toEndPoint", body["toEndPoint"])
        leg = self._transfer_target(room_name, sid)
        leg.transfers.append(
            {"kind": "sipRefer", "toEndPoint": body["toEndPoint"], "at": iso(self.clock.now())}
        )
        self._transfer_events(leg, body["toEndPoint"], is_sip_refer=True)
        return {"ok": True}

    def _transfer_events(self, leg: Leg, to_endpoint: str, *, is_sip_refer: bool) -> None:
        """`calltransfer.triggered` (the request was accepted) and `calltransfer.initiated` (the SIP
        user is removed from the room: its `*.stopped` and `participant.left` follow) now; after
        --answer-delay `calltransfer.answered` (when the new far end answers) and
        `calltransfer.completed` with a `complete_status` chosen by the target's magic user part
        (busy, no-answer, failed, else completed). Payload fields as in Daily's event pages."""
        user = to_endpoint[4:].split("@", 1)[0] if to_endpoint.lower().startswith("sip:") else ""
        status = {
            "busy": "busy",
            "noanswer": "no-answer",
            "declined": "failed",
            "unreachable": "failed",
            "notfound": "failed",
        }.get(outcome_for(user), "completed")

        def payload(**more: Any) -> dict[str, Any]:
            return {
                "domain_id": self.domain_id,
                "room": leg.room,
                "timestamp": self.event_log.timestamp(),
                "session_id": leg.id,
                "mtg_session_id": leg.mtg_session_id,
                "to_endpoint": to_endpoint,
                "from_endpoint": leg.destination or leg.sip_from,
                "is_sip_refer": is_sip_refer,
                **more,
            }

        def finish() -> None:
            if status == "completed":
                self.event_log.emit("calltransfer.answered", payload())
            extra: dict[str, Any] = {"complete_status": status}
            if is_sip_refer:
                extra["refer_sip_response_code"] = "202"
            self.event_log.emit("calltransfer.completed", payload(**extra))

        self.event_log.emit("calltransfer.triggered", payload())
        self.event_log.emit("calltransfer.initiated", payload())
        self.end_leg(leg, "sip-refer" if is_sip_refer else "call-transfer")
        self.scheduler.call_later(self.config.answer_delay, finish)
