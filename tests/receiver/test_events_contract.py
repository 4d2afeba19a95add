"""daily_sip.receiver.events: Daily envelope -> Prefect Event (no server needed)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from daily_sip.receiver import events as ev

EXAMPLE_CONNECTED = {
    "version": "1.0.0",
    "type": "dialout.connected",
    "id": "2868-dial-out-con-7d208e2a",
    "payload": {
        "domain_id": "04b89420-aaaa",
        "room": "my-dialout-room",
        "timestamp": "1728023426",
        "session_id": "7d208e2a-520b-4a8d-a2c9-3a36dfa0d342",
        "destination": "sip:abc@efg.dummy.com",
        "user_id": "corr-1",
        "origin": "sip:myroom.0@daily-2358023-app.dapp.signalwire.com",
        "caller_id": "34b0eb2b",
        "future_field": {"nested": [1, 2]},
    },
    "event_ts": 1728023426.552,
    "unknown_envelope_field": True,
}


def test_names_and_resource_ids():
    assert ev.event_name("dialout.answered") == "daily.dialout.answered"
    assert ev.DIALOUT_ANSWERED == "daily.dialout.answered"
    assert ev.DIALIN_READY == "daily.dialin.ready"
    assert ev.MEETING_STARTED == "daily.meeting.started"
    assert ev.room_resource_id("r1") == "daily.room.r1"
    assert ev.dialout_resource_id("s1") == "daily.dialout.s1"
    assert ev.dialin_resource_id("s1") == "daily.dialin.s1"
    assert ev.DIALOUT_ERROR in ev.DIALOUT_TERMINAL_EVENTS


def test_dialout_envelope_maps_to_contract():
    e = ev.to_prefect_event(EXAMPLE_CONNECTED)
    assert e.event == "daily.dialout.connected"
    assert dict(e.resource) == {
        "prefect.resource.id": "daily.room.my-dialout-room",
        "prefect.resource.name": "my-dialout-room",
        "daily.room": "my-dialout-room",
        "daily.domain_id": "04b89420-aaaa",
    }
    assert [dict(r) for r in e.related] == [
        {
            "prefect.resource.id": "daily.dialout.7d208e2a-520b-4a8d-a2c9-3a36dfa0d342",
            "prefect.resource.role": "dialout-session",
        },
        {"prefect.resource.id": "daily.user.corr-1", "prefect.resource.role": "dial-user"},
    ]
    assert e.payload == {
        "daily_event_id": "2868-dial-out-con-7d208e2a",
        "daily_type": "dialout.connected",
        "version": "1.0.0",
        "event_ts": 1728023426.552,
        "daily": EXAMPLE_CONNECTED["payload"],
    }
    assert e.occurred == datetime(2024, 10, 4, 6, 30, 26, tzinfo=UTC)
    # independent uuid5 computation
    namespace = uuid.uuid5(
        uuid.NAMESPACE_URL, "https://docs.daily.co/reference/rest-api/webhooks#daily-sip-flows"
    )
    assert e.id == uuid.uuid5(namespace, "2868-dial-out-con-7d208e2a")
    assert ev.to_prefect_event(dict(EXAMPLE_CONNECTED)).id == e.id  # stable


def test_dialin_session_is_a_dialin_resource_and_no_user():
    env = {
        "version": "1.0.0",
        "type": "dialin.warning",
        "id": "x1",
        "payload": {
            "room": "r",
            "timestamp": "1728036639",
            "session_id": "ff1e",
            "error_msg": "codec fallback",
        },
        "event_ts": 1728036639.433,
    }
    e = ev.to_prefect_event(env)
    assert [dict(r) for r in e.related] == [
        {"prefect.resource.id": "daily.dialin.ff1e", "prefect.resource.role": "dialin-session"}
    ]
    assert "daily.domain_id" not in e.resource


def test_unknown_type_and_missing_room_fall_back():
    e = ev.to_prefect_event(
        {"type": "batch-processor.job-finished", "id": 7, "payload": {"domain_id": "dom"}}
    )
    assert e.event == "daily.batch-processor.job-finished"
    assert e.resource.id == "daily.domain.dom"
    assert e.related == []
    assert e.payload["daily_event_id"] == "7"
    e2 = ev.to_prefect_event({"type": "x.y", "id": "i", "payload": "not-an-object"})
    assert e2.resource.id == "daily.webhook"
    assert e2.payload["daily"] == "not-an-object"
    e3 = ev.to_prefect_event({"type": "recording.started", "id": "i3", "payload": {"room_name": "rr"}})
    assert e3.resource.id == "daily.room.rr"


@pytest.mark.parametrize(
    ("timestamp", "event_ts", "expected"),
    [
        ("1728023426", None, datetime(2024, 10, 4, 6, 30, 26, tzinfo=UTC)),
        (1728023426, None, datetime(2024, 10, 4, 6, 30, 26, tzinfo=UTC)),
        (1728023426500, None, datetime(2024, 10, 4, 6, 30, 26, 500000, tzinfo=UTC)),
        ("1728023426500", None, datetime(2024, 10, 4, 6, 30, 26, 500000, tzinfo=UTC)),
        ("2024-10-04T06:30:26Z", None, datetime(2024, 10, 4, 6, 30, 26, tzinfo=UTC)),
        ("garbage", 1728023427.25, datetime(2024, 10, 4, 6, 30, 27, 250000, tzinfo=UTC)),
        (None, 1728023427250, datetime(2024, 10, 4, 6, 30, 27, 250000, tzinfo=UTC)),
    ],
)
def test_occurred_parsing(timestamp, event_ts, expected):
    payload = {"room": "r"} if timestamp is None else {"room": "r", "timestamp": timestamp}
    env = {"type": "dialout.stopped", "id": "t", "payload": payload}
    if event_ts is not None:
        env["event_ts"] = event_ts
    assert ev.to_prefect_event(env).occurred == expected


def test_occurred_defaults_to_now():
    before = datetime.now(UTC)
    e = ev.to_prefect_event({"type": "dialout.stopped", "id": "t", "payload": {"room": "r"}})
    assert before <= e.occurred <= datetime.now(UTC)


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "x", "payload": {}},
        {"type": "", "id": "x"},
        {"type": "a.b"},
        {"type": "a.b", "id": ""},
        {"type": "a.b", "id": {"k": 1}},
        ["not", "a", "dict"],
    ],
)
def test_unusable_envelopes_raise_value_error(bad):
    with pytest.raises(ValueError):
        ev.to_prefect_event(bad)


def test_event_roundtrips_through_prefect_json():
    from prefect.events import Event

    e = ev.to_prefect_event(EXAMPLE_CONNECTED)
    again = Event.model_validate_json(e.model_dump_json())
    assert again == e
