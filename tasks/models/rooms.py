"""Rooms and the room properties that matter for SIP: dial-in (``sip``) and dial-out."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from .base import DailyRequest, DailyResponse
from .validators import AudioCodecList, DisplayName, RoomName, VideoCodecList

# Daily documents no maximum; 20 is far above the default session limit of 5 and catches typos.
MAX_SIP_ENDPOINTS = 20
# The name Daily's own SIP guide uses (https://docs.daily.co/docs/guides/features/dial-in-dial-out/sip).
DEFAULT_SIP_DISPLAY_NAME = "SIP Participant"


class SipCodecs(DailyRequest):
    """Preferred codecs, best first. Daily transcodes (and charges) if the far end lacks the first."""

    audio: AudioCodecList | None = Field(default=None, examples=[["OPUS", "PCMU"]])
    video: VideoCodecList | None = Field(default=None, examples=[["H264"]])


class DialinConfig(DailyRequest):
    allow_room_start: bool | None = None
    dialin_geo: str | None = None
    max_idle_timeout_sec: float | None = Field(default=None, ge=0)
    max_idle_timeout_post_conversation_sec: float | None = Field(default=None, ge=0)
    hold_music_enabled: bool | None = None


class SipSettings(DailyRequest):
    """``properties.sip``: turns SIP dial-in on for a room.

    Daily requires ``sip_mode`` and ``display_name`` whenever ``sip`` is an object
    (https://docs.daily.co/reference/rest-api/rooms/config); both have defaults here and are
    always sent, nested in a room update or not.

    Example:
        >>> SipSettings(display_name="Bridge", num_endpoints=2).to_body()
        {'sip_mode': 'dial-in', 'display_name': 'Bridge', 'num_endpoints': 2}
        >>> RoomProperties(sip=SipSettings()).to_body()
        {'sip': {'sip_mode': 'dial-in', 'display_name': 'SIP Participant'}}
    """

    always_sent = ("sip_mode", "display_name")

    sip_mode: Literal["dial-in"] = "dial-in"
    display_name: DisplayName = DEFAULT_SIP_DISPLAY_NAME
    video: bool | None = None
    num_endpoints: int | None = Field(default=None, ge=1, le=MAX_SIP_ENDPOINTS)
    codecs: SipCodecs | None = None
    # "daily" or "signalwire"; unset means SignalWire's host
    # (https://docs.daily.co/docs/guides/features/dial-in-dial-out).
    provider: Literal["daily", "signalwire"] | None = None
    force_digit_only_username: bool | None = None
    dialin_config: DialinConfig | None = None

    @model_validator(mode="after")
    def _digit_only_needs_one_endpoint(self) -> SipSettings:
        if self.force_digit_only_username and (self.num_endpoints or 1) > 1:
            raise ValueError("force_digit_only_username works only with num_endpoints = 1; drop one of them")
        return self


class DialoutConfig(DailyRequest):
    """``properties.dialout_config``: lets a REST dial-out start the room on its own."""

    allow_room_start: bool | None = None
    dialout_geo: str | None = None
    max_idle_timeout_sec: float | None = Field(default=None, ge=0)
    max_idle_timeout_post_conversation_sec: float | None = Field(default=None, ge=0)


class RoomProperties(DailyRequest):
    """The room properties this library sets. ``sip=None`` (set explicitly) turns SIP off."""

    # Unix seconds; a fraction is accepted (pipecat sends ``time.time() + 3600``).
    exp: int | float | None = Field(default=None, description="Unix seconds after which nobody can join")
    nbf: int | float | None = None
    eject_at_room_exp: bool | None = None
    max_participants: int | None = Field(default=None, ge=1)
    enable_dialout: bool | None = None
    dialout_config: DialoutConfig | None = None
    sip: SipSettings | None = None
    geo: str | None = None
    start_video_off: bool | None = None
    start_audio_off: bool | None = None


class CreateRoom(DailyRequest):
    name: RoomName | None = None
    privacy: Literal["public", "private"] | None = None
    properties: RoomProperties | None = None


class UpdateRoom(DailyRequest):
    privacy: Literal["public", "private"] | None = None
    properties: RoomProperties | None = None


class SipUri(DailyResponse):
    """Read-only ``config.sip_uri``: the address(es) SIP callers dial."""

    endpoint: str
    extra_endpoints: list[str] = Field(default_factory=list)

    @property
    def all_endpoints(self) -> list[str]:
        from .validators import normalize_sip_endpoint

        return [normalize_sip_endpoint(e) for e in [self.endpoint, *self.extra_endpoints]]


class RoomConfig(DailyResponse):
    """A room's ``config``: only properties that differ from defaults are present."""

    sip: dict | None = None
    sip_uri: SipUri | None = None
    enable_dialout: bool | None = None
    dialout_config: dict | None = None
    exp: int | float | None = None


class Room(DailyResponse):
    id: str
    name: str
    api_created: bool | None = None
    privacy: str | None = None
    url: str | None = None
    created_at: datetime | str | None = None
    config: RoomConfig = Field(default_factory=RoomConfig)

    @property
    def sip_enabled(self) -> bool:
        return self.config.sip_uri is not None


class RoomList(DailyResponse):
    total_count: int
    data: list[Room]


class DeletedRoom(DailyResponse):
    deleted: bool = True
    name: str | None = None
    already_gone: bool = False  # ours, not Daily's: the room did not exist any more
