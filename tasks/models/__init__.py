"""Pydantic v2 models for the Daily REST API subset this library uses.

Models named for requests (``CreateRoom``, ``StartDialOut``, ...) refuse unknown or invalid fields
with a message that names the field; models for Daily's answers keep unknown fields.
"""

from .base import DailyRequest, DailyResponse
from .dialout import (
    Acknowledged,
    DialOutCodecs,
    DialOutStarted,
    SendDtmf,
    StartDialOut,
    StopDialOut,
    VideoSettings,
)
from .events import (
    DialInPayload,
    DialInReadyPayload,
    DialOutErrorPayload,
    DialOutPayload,
    EventPayload,
    MeetingPayload,
)
from .presence import Participant, RoomPresence
from .rooms import (
    CreateRoom,
    DeletedRoom,
    DialinConfig,
    DialoutConfig,
    Room,
    RoomConfig,
    RoomList,
    RoomProperties,
    SipCodecs,
    SipSettings,
    SipUri,
    UpdateRoom,
)
from .transfers import SipCallTransfer, SipRefer
from .validators import dialin_uri, encode_uri_component, normalize_sip_endpoint, sip_uri_with_headers
from .webhooks import Webhook, WebhookEvent, WebhookSettings

__all__ = [
    "Acknowledged",
    "CreateRoom",
    "DailyRequest",
    "DailyResponse",
    "DeletedRoom",
    "DialInPayload",
    "DialInReadyPayload",
    "DialOutCodecs",
    "DialOutErrorPayload",
    "DialOutPayload",
    "DialOutStarted",
    "DialinConfig",
    "DialoutConfig",
    "EventPayload",
    "MeetingPayload",
    "Participant",
    "Room",
    "RoomConfig",
    "RoomList",
    "RoomPresence",
    "RoomProperties",
    "SendDtmf",
    "SipCallTransfer",
    "SipCodecs",
    "SipRefer",
    "SipSettings",
    "SipUri",
    "StartDialOut",
    "StopDialOut",
    "UpdateRoom",
    "VideoSettings",
    "Webhook",
    "WebhookEvent",
    "WebhookSettings",
    "dialin_uri",
    "encode_uri_component",
    "normalize_sip_endpoint",
    "sip_uri_with_headers",
]
