"""Payloads of the webhook events this library acts on (dialout.*, dialin.*, meeting.*)."""

from __future__ import annotations

from pydantic import field_validator

from ..events import DailyType
from .base import DailyResponse


class EventPayload(DailyResponse):
    """Common ground. ``timestamp`` arrives as a string in Daily's examples, an int in its schema."""

    room: str | None = None
    domain_id: str | None = None
    timestamp: float | None = None

    @field_validator("timestamp", mode="before")
    @classmethod
    def _str_or_number(cls, v: object) -> object:
        if isinstance(v, str):
            try:
                return float(v)
            except ValueError:
                return None
        return v


class DialOutPayload(EventPayload):
    """``dialout.connected / answered / stopped / warning``."""

    session_id: str | None = None
    user_id: str | None = None
    destination: str | None = None
    origin: str | None = None
    caller_id: str | None = None
    error_msg: str | None = None  # present on warnings in practice, absent in the docs' example


class DialOutErrorPayload(EventPayload):
    """``dialout.error``: fatal; carries ``error_msg`` and no ``destination``."""

    session_id: str | None = None
    user_id: str | None = None
    error_msg: str | None = None


class DialInReadyPayload(EventPayload):
    sip_endpoint: str


class DialInPayload(EventPayload):
    """``dialin.connected / stopped``; errors and warnings add ``error_msg``."""

    session_id: str | None = None
    sip_from: str | None = None
    display_name: str | None = None
    sip_headers: dict | None = None
    error_msg: str | None = None


class MeetingPayload(EventPayload):
    meeting_id: str | None = None
    start_ts: float | None = None
    end_ts: float | None = None


PAYLOAD_MODELS: dict[str, type[EventPayload]] = {
    DailyType.DIALOUT_CONNECTED: DialOutPayload,
    DailyType.DIALOUT_ANSWERED: DialOutPayload,
    DailyType.DIALOUT_STOPPED: DialOutPayload,
    DailyType.DIALOUT_WARNING: DialOutPayload,
    DailyType.DIALOUT_ERROR: DialOutErrorPayload,
    DailyType.DIALIN_READY: DialInReadyPayload,
    DailyType.DIALIN_CONNECTED: DialInPayload,
    DailyType.DIALIN_STOPPED: DialInPayload,
    DailyType.DIALIN_ERROR: DialInPayload,
    DailyType.DIALIN_WARNING: DialInPayload,
    DailyType.MEETING_STARTED: MeetingPayload,
    DailyType.MEETING_ENDED: MeetingPayload,
}
