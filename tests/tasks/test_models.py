"""Request models refuse bad input with a message naming the field; response models parse Daily's examples."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from daily_sip.tasks.models import (
    CreateRoom,
    DialOutStarted,
    Room,
    SendDtmf,
    SipCallTransfer,
    SipRefer,
    SipSettings,
    StartDialOut,
    Webhook,
    WebhookEvent,
    WebhookSettings,
    dialin_uri,
    encode_uri_component,
    sip_uri_with_headers,
)
from daily_sip.tasks.models.events import DialInReadyPayload, DialOutErrorPayload, DialOutPayload

GOOD_URI = "sip:123@bridge.example.com"

# (model, input, field named in the error, words the message must carry)
BAD_INPUT = [
    (StartDialOut, {"sipUri": "123@bridge.example.com"}, "sipUri", "must start with 'sip:'"),
    (StartDialOut, {"sipUri": "sips:123@bridge.example.com"}, "sipUri", "must start with 'sip:'"),
    (StartDialOut, {"sipUri": "sip:12 3@bridge.example.com"}, "sipUri", "spaces"),
    (StartDialOut, {"sipUri": "sip:123@bridge.example.com\n"}, "sipUri", "spaces or control"),
    (StartDialOut, {"sipUri": "sip:123@bri\x07dge.example.com"}, "sipUri", "control"),
    (StartDialOut, {"sipUri": "sip:" + "1" * 600 + "@x.com"}, "sipUri", "at most 512"),
    (StartDialOut, {"sipUri": "sip:123@"}, "sipUri", "no host"),
    (StartDialOut, {"sipUri": "sip:@bridge.example.com"}, "sipUri", "empty user part"),
    (StartDialOut, {"sipUri": GOOD_URI + "?Subject=hi"}, "sipUri", "'X-...'"),
    (StartDialOut, {"sipUri": GOOD_URI + "?X-a=1&Via=evil"}, "sipUri", "'Via' is not allowed"),
    (StartDialOut, {"sipUri": GOOD_URI + "?X-a"}, "sipUri", "needs a value"),
    (StartDialOut, {"sipUri": GOOD_URI, "userId": "u" * 37}, "userId", "at most 36"),
    (StartDialOut, {"sipUri": GOOD_URI, "displayName": ""}, "displayName", "blank"),
    (StartDialOut, {"sipUri": GOOD_URI, "displayName": "a\nb"}, "displayName", "control"),
    (StartDialOut, {"sipUri": GOOD_URI, "displayName": "x" * 129}, "displayName", "at most 128"),
    (StartDialOut, {"sipUri": GOOD_URI, "codecs": {"audio": ["AMR"]}}, "codecs.audio.0", "OPUS"),
    (StartDialOut, {"sipUri": GOOD_URI, "codecs": {"video": ["H265"]}}, "codecs.video.0", "H264"),
    (StartDialOut, {"sipUri": GOOD_URI, "codecs": {"audio": ["OPUS", "opus"]}}, "codecs.audio", "twice"),
    (StartDialOut, {"sipUri": GOOD_URI, "codecs": {"audio": []}}, "codecs.audio", "at least one"),
    (StartDialOut, {"sipUri": GOOD_URI, "codec": {"audio": ["OPUS"]}}, "codec", "Extra inputs"),
    (StartDialOut, {"sipUri": GOOD_URI, "phoneNumber": "+14155550100"}, "", "exactly one"),
    (StartDialOut, {}, "", "exactly one of sipUri or phoneNumber"),
    (StartDialOut, {"phoneNumber": "4155550100"}, "phoneNumber", "pattern"),
    (
        StartDialOut,
        {"sipUri": GOOD_URI, "video": True, "videoSettings": {"width": 1920}},
        "videoSettings.width",
        "1280",
    ),
    (StartDialOut, {"sipUri": GOOD_URI, "videoSettings": {"fps": 15}}, "", "needs video=true"),
    (SipSettings, {"num_endpoints": 0}, "num_endpoints", "greater than or equal to 1"),
    (SipSettings, {"num_endpoints": 21}, "num_endpoints", "less than or equal to 20"),
    (SipSettings, {"sip_mode": "dial-out"}, "sip_mode", "dial-in"),
    (SipSettings, {"codecs": {"audio": ["G729"]}}, "codecs.audio.0", "PCMA"),
    (SipSettings, {"num_endpoints": 2, "force_digit_only_username": True}, "", "num_endpoints = 1"),
    (SipSettings, {"display_name": "\t"}, "display_name", "blank"),
    (SendDtmf, {"sessionId": "s", "tones": "12E"}, "tones", "invalid tones ['E']"),
    (SendDtmf, {"sessionId": "s", "tones": "1" * 21}, "tones", "at most 20"),
    (SendDtmf, {"sessionId": "s", "tones": ""}, "tones", "at least one tone"),
    (SendDtmf, {"sessionId": "s", "tones": "1 2"}, "tones", "invalid tones [' ']"),
    (SendDtmf, {"sessionId": "s", "tones": "1", "digitDurationMs": 49}, "digitDurationMs", "50"),
    (SendDtmf, {"sessionId": "s", "tones": "1", "digitDurationMs": 2001}, "digitDurationMs", "2000"),
    (SendDtmf, {"sessionId": "", "tones": "1"}, "sessionId", "at least 1"),
    (CreateRoom, {"name": "bad name!"}, "name", "Daily's room-name rule"),
    (CreateRoom, {"name": "x" * 129}, "name", "1-128"),
    (CreateRoom, {"properties": {"enable_dialout": "maybe"}}, "properties.enable_dialout", "boolean"),
    (CreateRoom, {"properties": {"sip_uri": {"endpoint": "x"}}}, "properties.sip_uri", "Extra inputs"),
    (CreateRoom, {"privacy": "secret"}, "privacy", "'public' or 'private'"),
    (SipCallTransfer, {"sessionId": "s", "toEndPoint": "ops"}, "toEndPoint", "E.164"),
    (SipRefer, {"sessionId": "s", "toEndPoint": "sip:a b@c"}, "toEndPoint", "spaces"),
    (WebhookSettings, {"url": "ftp://x"}, "url", "pattern"),
    (WebhookSettings, {"url": "https://x", "hmac": "not base64!"}, "hmac", "must be base64"),
    (WebhookSettings, {"url": "https://x", "retryType": "forever"}, "retryType", "exponential"),
]


@pytest.mark.parametrize(
    ("model", "data", "field", "words"),
    BAD_INPUT,
    ids=[f"{m.__name__}-{i}" for i, (m, *_rest) in enumerate(BAD_INPUT)],
)
def test_bad_input_names_the_field(model, data, field, words):
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    errors = info.value.errors()
    locs = [".".join(str(p) for p in e["loc"]) for e in errors]
    assert field in locs, f"expected an error at {field!r}, got {locs}"
    text = str(info.value)
    assert words in text, text


def test_the_bad_input_table_is_big_enough():
    assert len(BAD_INPUT) >= 25


def test_secrets_stay_out_of_reprs_and_reach_only_the_wire():
    settings = WebhookSettings(url="https://x", hmac="c2VjcmV0LXZhbHVl")
    assert "c2VjcmV0LXZhbHVl" not in repr(settings) and "c2VjcmV0LXZhbHVl" not in str(settings)
    assert settings.to_body()["hmac"] == "c2VjcmV0LXZhbHVl"
    hook = Webhook.model_validate({"uuid": "u", "url": "https://x", "hmac": "c2VjcmV0LXZhbHVl"})
    assert "c2VjcmV0LXZhbHVl" not in repr(hook)


def test_codecs_and_tones_are_normalised_to_daily_spelling():
    body = StartDialOut.model_validate(
        {"sipUri": GOOD_URI, "codecs": {"audio": ["opus", "pcmu"], "video": ["vp8"]}}
    ).to_body()
    assert body["codecs"] == {"audio": ["OPUS", "PCMU"], "video": ["VP8"]}
    assert SendDtmf(session_id="s", tones="12ab*#").tones == "12AB*#"


def test_unset_fields_are_not_sent_but_explicit_null_sip_is():
    assert StartDialOut(sip_uri=GOOD_URI).to_body() == {"sipUri": GOOD_URI}
    assert CreateRoom.model_validate({"properties": {"sip": None}}).to_body() == {"properties": {"sip": None}}


@pytest.mark.parametrize("ok", ["true", True, "True"])
def test_dialout_started_accepts_string_or_bool_ok(ok):
    started = DialOutStarted.model_validate({"ok": ok, "sessionId": "abc", "futureField": 1})
    assert started.ok is True and started.session_id == "abc"


REFERENCE_EXAMPLES = [
    '{"version":"1.0.0","type":"dialout.connected","id":"2868-dial-out-con-7d208e2a",'
    '"payload":{"domain_id":"04b89420","room":"my-dialout-room","timestamp":"1728023426",'
    '"session_id":"7d208e2a-520b-4a8d-a2c9-3a36dfa0d342","destination":"sip:abc@efg.dummy.com",'
    '"origin":"sip:myroom.0@daily-2358023-app.dapp.signalwire.com","caller_id":"34b0eb2b"},'
    '"event_ts":1728023426.552}',
    '{"version":"1.0.0","type":"dialin.ready","id":"3602-dial-in-ready-1744186319",'
    '"payload":{"domain_id":"04b89420","room":"my-sip-room","timestamp":"1744186319",'
    '"sip_endpoint":"sip:my-sip-room.0@daily-23097230720-app.dapp.signalwire.com"},"event_ts":1744186319.195}',
    '{"version":"1.0.0","type":"dialin.warning","id":"2868-dial-in-warn-ff1e7130",'
    '"payload":{"domain_id":"04b89420","room":"my-dialin-room","timestamp":"1728036639",'
    '"session_id":"ff1e7130","error_msg":"Dialin codec did not match, using fallback."},'
    '"event_ts":1728036639.433}',
]


@pytest.mark.parametrize("raw", REFERENCE_EXAMPLES)
def test_reference_event_examples_parse(raw):
    event = WebhookEvent.model_validate_json(raw)
    payload = event.typed_payload()
    assert payload.timestamp and payload.timestamp > 1.7e9
    if event.type == "dialout.connected":
        assert isinstance(payload, DialOutPayload) and payload.destination == "sip:abc@efg.dummy.com"
    if event.type == "dialin.ready":
        assert isinstance(payload, DialInReadyPayload) and payload.sip_endpoint.endswith("signalwire.com")


def test_dialout_error_payload_and_other_reference_shapes_parse():
    err = WebhookEvent.model_validate(
        {
            "type": "dialout.error",
            "id": "e1",
            "payload": {
                "timestamp": 1728023426,
                "session_id": "s",
                "user_id": "u",
                "domain_id": "d",
                "room": "r",
                "error_msg": "SIP 486 Busy Here",
            },
        }
    ).typed_payload()
    assert isinstance(err, DialOutErrorPayload) and err.error_msg == "SIP 486 Busy Here"
    room = Room.model_validate(
        json.loads(
            '{"id":"5e3cf703-5547-47d6-a371-37b1f0b4427f","name":"my-room","api_created":true,'
            '"privacy":"public","url":"https://x.daily.co/my-room","created_at":"2019-01-26T09:01:22.000Z",'
            '"config":{"sip_uri":{"endpoint":"123456780@example.sip.daily.co"},'
            '"sip":{"sip_mode":"dial-in","display_name":"SIP Participant"},"brand_new_flag":1}}'
        )
    )
    assert room.sip_enabled and room.config.sip_uri.all_endpoints == ["sip:123456780@example.sip.daily.co"]
    assert DialOutStarted.model_validate_json('{"ok": "true", "sessionId": "u-1"}').session_id == "u-1"


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("Zürich bridge", "Z%C3%BCrich%20bridge"),
        ("A&B=c?d/e#f", "A%26B%3Dc%3Fd%2Fe%23f"),
        ("keep-_.!~*'()", "keep-_.!~*'()"),
        ("会议室 🎥", "%E4%BC%9A%E8%AE%AE%E5%AE%A4%20%F0%9F%8E%A5"),
        ("+1 (555)", "%2B1%20(555)"),
    ],
)
def test_encode_uri_component_matches_javascript(text, encoded):
    assert encode_uri_component(text) == encoded


def test_dialin_uri_adds_display_name_and_scheme():
    assert dialin_uri("room.0@d.sip.daily.co", "Ops Desk") == (
        "sip:room.0@d.sip.daily.co?x-daily_display_name=Ops%20Desk"
    )
    with pytest.raises(ValueError, match="control"):
        dialin_uri("sip:room.0@d.sip.daily.co", "bad\nname")


def test_headers_become_uri_parameters():
    uri = sip_uri_with_headers(GOOD_URI, {"X-Campaign": "mon 9", "X-Id": "7"})
    assert uri == GOOD_URI + "?X-Campaign=mon%209&X-Id=7"
    assert StartDialOut(sip_uri=uri).sip_uri == uri
    with pytest.raises(ValueError, match="'Contact' is not allowed"):
        sip_uri_with_headers(GOOD_URI, {"Contact": "x"})
