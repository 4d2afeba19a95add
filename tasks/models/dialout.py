"""Dial-out request and response bodies: start, stop, DTMF."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from .base import DailyRequest, DailyResponse
from .validators import (
    AudioCodecList,
    CallerId,
    DigitDurationMs,
    DisplayName,
    DtmfTones,
    Extension,
    SipUriStr,
    UserId,
    VideoCodecList,
)


class DialOutCodecs(DailyRequest):
    audio: AudioCodecList | None = None
    video: VideoCodecList | None = None


class VideoSettings(DailyRequest):
    width: int | None = Field(default=None, ge=1, le=1280)
    height: int | None = Field(default=None, ge=1, le=720)
    fps: int | None = Field(default=None, ge=1, le=30)
    video_bitrate: int | None = Field(default=None, alias="videoBitrate", ge=1, le=1000)


class StartDialOut(DailyRequest):
    """Body of ``POST /rooms/:name/dialOut/start``. Python names are snake_case; Daily's are camelCase.

    Example:
        >>> StartDialOut(sip_uri="sip:123@bridge.example.com", user_id="t1").to_body()
        {'sipUri': 'sip:123@bridge.example.com', 'userId': 't1'}
    """

    sip_uri: SipUriStr | None = Field(default=None, alias="sipUri")
    phone_number: str | None = Field(default=None, alias="phoneNumber", pattern=r"^\+[1-9]\d{6,14}$")
    display_name: DisplayName | None = Field(default=None, alias="displayName")
    user_id: UserId | None = Field(default=None, alias="userId")
    caller_id: CallerId | None = Field(default=None, alias="callerId")
    extension: Extension | None = Field(default=None)
    wait_before_extension_dial_sec: int | None = Field(
        default=None, alias="waitBeforeExtensionDialSec", ge=0, le=60
    )
    video: bool | None = None
    video_settings: VideoSettings | None = Field(default=None, alias="videoSettings")
    codecs: DialOutCodecs | None = None

    @model_validator(mode="after")
    def _one_destination(self) -> StartDialOut:
        if (self.sip_uri is None) == (self.phone_number is None):
            raise ValueError("give exactly one of sipUri or phoneNumber")
        if self.video_settings is not None and not self.video:
            raise ValueError("videoSettings needs video=true")
        if self.sip_uri is not None and (self.extension or self.caller_id):
            raise ValueError("extension and callerId apply to phoneNumber dial-outs only")
        return self


class DialOutStarted(DailyResponse):
    """Daily's answer to a start. ``ok`` arrives as ``"true"`` or ``true``; both parse."""

    ok: bool = True
    session_id: str = Field(alias="sessionId")

    @field_validator("ok", mode="before")
    @classmethod
    def _ok_string_or_bool(cls, v: object) -> object:
        return v.strip().lower() == "true" if isinstance(v, str) else v


class StopDialOut(DailyRequest):
    session_id: str = Field(alias="sessionId", min_length=1)


class SendDtmf(DailyRequest):
    """Body of ``POST /rooms/:name/dialOut/sendDTMF``.

    Example:
        >>> SendDtmf(session_id="abc", tones="1234#").to_body()
        {'sessionId': 'abc', 'tones': '1234#'}
    """

    session_id: str = Field(alias="sessionId", min_length=1)
    tones: DtmfTones
    digit_duration_ms: DigitDurationMs | None = Field(default=None, alias="digitDurationMs")


class Acknowledged(DailyResponse):
    """The undocumented 200 body of stop / sendDTMF / transfers: whatever arrives is kept."""

    ok: bool | None = None

    @field_validator("ok", mode="before")
    @classmethod
    def _ok_string_or_bool(cls, v: object) -> object:
        return v.strip().lower() == "true" if isinstance(v, str) else v
