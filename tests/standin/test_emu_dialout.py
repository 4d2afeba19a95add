"""Dial-out, DTMF, transfers, presence and dial-in over real HTTP (shared stand-in:
connect 0.05 s, answer 0.05 s, ring timeout 1 s, hang-up after 0.5 s, limit 5)."""

from __future__ import annotations

import time
import uuid

import pytest

from .support import wait_until

# Daily requires both fields whenever `sip` is an object.
SIP_ON = {"sip_mode": "dial-in", "display_name": "SIP caller"}

ENDED = ("stopped", "failed")


def leg_events(emu, room: str) -> list[str]:
    return [t for t in emu.event_types(room) if t.startswith(("dialout.", "dialin."))]


def wait_types(emu, room: str, expected: list[str], timeout: float = 5) -> list[dict]:
    """Wait until the room's event types are exactly `expected`."""
    wait_until(lambda: emu.event_types(room) == expected or None, timeout)
    return emu.events(room)


def test_default_outcome_sequence_and_payloads(shared):
    room = shared.dial_room()
    sid = shared.start_ok(room, sipUri="sip:alice@example.com?X-Call=42", userId="corr-1")
    uuid.UUID(sid)
    shared.wait_leg(sid, lambda leg: leg["state"] == "answered")
    time.sleep(0.2)
    assert shared.leg(sid)["state"] == "answered", "a normal call stays up"
    r = shared.post(f"/rooms/{room}/dialOut/stop", {"sessionId": sid})
    assert r.status_code == 200 and r.json() == {"ok": True}
    events = wait_types(
        shared,
        room,
        ["meeting.started", "dialout.connected", "dialout.answered", "dialout.stopped", "meeting.ended"],
    )
    connected = events[1]["payload"]
    assert set(connected) == {
        "timestamp",
        "session_id",
        "user_id",
        "domain_id",
        "room",
        "destination",
        "origin",
    }
    assert isinstance(connected["timestamp"], str) and connected["timestamp"].isdigit()
    assert connected["session_id"] == sid and connected["user_id"] == "corr-1"
    assert connected["room"] == room and connected["destination"] == "sip:alice@example.com?X-Call=42"
    started, ended = events[0]["payload"], events[-1]["payload"]
    assert set(ended) == {"start_ts", "end_ts", "meeting_id", "room"}
    assert ended["meeting_id"] == started["meeting_id"] and ended["end_ts"] >= ended["start_ts"]
    leg = shared.leg(sid)
    assert leg["sip_headers"] == {"X-Call": "42"} and leg["end_reason"] == "api-stop"
    assert leg["events"] == ["dialout.connected", "dialout.answered", "dialout.stopped"]


@pytest.mark.parametrize(
    ("user", "expected", "code"),
    [
        ("busy", ["dialout.error"], "486"),
        ("Busy-2", ["dialout.error"], "486"),
        ("notfound", ["dialout.error"], "404"),
        ("noanswer.bridge7", ["dialout.connected", "dialout.error"], "408"),
        ("hangup", ["dialout.connected", "dialout.answered", "dialout.stopped"], None),
    ],
)
def test_magic_outcomes(shared, user, expected, code):
    room = shared.dial_room()
    sid = shared.start_ok(room, sipUri=f"sip:{user}@pbx.example.com")
    events = wait_types(shared, room, ["meeting.started", *expected, "meeting.ended"])
    last = events[-2]["payload"]
    leg = shared.leg(sid)
    if code:
        assert code in last["error_msg"] and "destination" not in last and "user_id" not in last
        assert leg["state"] == "failed" and str(leg["sip_code"]) == code
    else:
        assert leg["state"] == "stopped" and leg["end_reason"] == "remote-hangup"


def test_noanswer_rings_for_the_ring_timeout(shared):
    room = shared.dial_room()
    sid = shared.start_ok(room, sipUri="sip:noanswer@x.com")
    shared.wait_leg(sid, lambda leg: leg["state"] == "ringing")
    time.sleep(0.5)
    assert shared.leg(sid)["state"] == "ringing"
    leg = shared.wait_leg(sid, lambda leg: leg["state"] == "failed")
    assert leg["sip_code"] == 408


def test_stop_while_ringing_ends_with_stopped_and_no_error(shared):
    room = shared.dial_room()
    sid = shared.start_ok(room, sipUri="sip:noanswer@x.com")
    shared.wait_leg(sid, lambda leg: leg["state"] == "ringing")
    assert shared.post(f"/rooms/{room}/dialOut/stop", {"sessionId": sid}).status_code == 200
    time.sleep(1.1)  # past the ring timeout: the error must not come anyway
    assert leg_events(shared, room) == ["dialout.connected", "dialout.stopped"]


def test_phone_number_dialout_behaves_like_default(shared):
    room = shared.dial_room()
    sid = shared.start_ok(room, phoneNumber="+14155550123", displayName="Front desk")
    shared.wait_leg(sid, lambda leg: leg["state"] == "answered")
    payload = shared.events(room)[-1]["payload"]
    assert payload["destination"] == "+14155550123" and "user_id" not in payload


def test_dialout_needs_enable_dialout(shared):
    room = shared.make_room(dialout_config={"allow_room_start": True})["name"]
    r = shared.start(room, sipUri="sip:a@x.com")
    assert r.status_code == 403 and r.json()["error"] == "forbidden-error"
    assert "enable_dialout" in r.json()["info"]


def test_dialout_into_an_empty_room_needs_allow_room_start(shared):
    room = shared.make_room(enable_dialout=True)["name"]
    r = shared.start(room, sipUri="sip:a@x.com")
    assert r.status_code == 404 and r.json()["info"] == "Room is not hosting a call"
    joined = shared.emu_post(f"rooms/{room}/join", {"user_name": "host"})
    assert joined.status_code == 200
    shared.start_ok(room, sipUri="sip:a@x.com")
    assert shared.event_types(room)[0] == "meeting.started"


def test_unknown_room(shared):
    r = shared.start("no-such-room-xyz", sipUri="sip:a@x.com")
    assert r.status_code == 404 and "no-such-room-xyz" in r.json()["info"]


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({}, "sipUri"),
        ({"sipUri": "sip:a@x.com", "phoneNumber": "+15551234567"}, "phoneNumber"),
        ({"sipUri": "http://a@x.com"}, "sip:"),
        ({"sipUri": "sip:a b@x.com"}, "spaces"),
        ({"sipUri": "sip:a@x.com?Foo=1"}, "X-"),
        ({"sipUri": "sip:a@x.com", "userId": "u" * 37}, "userId"),
        ({"sipUri": "sip:a@x.com", "video": "yes"}, "video"),
        ({"sipUri": "sip:a@x.com", "video": True, "videoSettings": {"width": 1920}}, "videoSettings.width"),
        ({"sipUri": "sip:a@x.com", "video": True, "videoSettings": {"fps": 60}}, "videoSettings.fps"),
        ({"sipUri": "sip:a@x.com", "videoSettings": {"width": 640}}, "videoSettings"),
        ({"sipUri": "sip:a@x.com", "codecs": {"audio": ["MP3"]}}, "codecs.audio"),
        ({"sipUri": "sip:a@x.com", "codecs": {"video": ["AV1"]}}, "codecs.video"),
        ({"sipUri": "sip:a@x.com", "dialTimeout": 5}, "dialTimeout"),
        ({"phoneNumber": "5551234"}, "phoneNumber"),
        ({"phoneNumber": "+15551234567", "callerId": "+15550000000"}, "callerId"),
        ({"phoneNumber": "+15551234567", "waitBeforeExtensionDialSec": 61}, "waitBeforeExtensionDialSec"),
        ({"phoneNumber": "+15551234567", "video": True}, "video"),
    ],
)
def test_dialout_body_validation(shared, body, names):
    room = shared.dial_room()
    r = shared.start(room, **body)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid-request-error" and names in r.json()["info"]
    assert shared.event_types(room) == [], "a refused start creates nothing"


def test_full_valid_body_is_accepted(shared):
    room = shared.dial_room()
    shared.start_ok(
        room,
        sipUri="sip:bob@x.com?X-A=1&X-B=2",
        displayName="Bob",
        userId="u" * 36,
        video=True,
        videoSettings={"width": 1280, "height": 720, "fps": 30, "videoBitrate": 1000},
        codecs={"audio": ["OPUS", "PCMU"], "video": ["VP8"]},
    )
    shared.start_ok(
        room,
        phoneNumber="+442071234567",
        callerId=str(uuid.uuid4()),
        extension="123#",
        waitBeforeExtensionDialSec=2,
    )


def test_session_limit_counts_dialouts_and_dialins(shared):
    room = shared.dial_room(sip={**SIP_ON, "dialin_config": {"allow_room_start": True}})
    caller = shared.emu_post(f"rooms/{room}/dialin", {"from": "sip:+15550009999@carrier"})
    assert caller.status_code == 200 and caller.json()["state"] == "connected"
    sids = [shared.start_ok(room, sipUri=f"sip:user{i}@x.com") for i in range(4)]
    r = shared.start(room, sipUri="sip:one-too-many@x.com")
    assert r.status_code == 400 and "max_sip_pstn_sessions_per_room" in r.json()["info"]
    rooms = {x["name"]: x for x in shared.emu("rooms")}
    assert rooms[room]["legs_up"] == 5 and rooms[room]["dialin_legs_up"] == 1
    shared.post(f"/rooms/{room}/dialOut/stop", {"sessionId": sids[0]})
    shared.start_ok(room, sipUri="sip:fits-again@x.com")


def test_failed_legs_free_their_slot(shared):
    room = shared.dial_room()
    sids = [shared.start_ok(room, sipUri=f"sip:busy-{i}@x.com") for i in range(5)]
    for sid in sids:
        shared.wait_leg(sid, lambda leg: leg["state"] == "failed")
    shared.start_ok(room, sipUri="sip:ok@x.com")


def test_stop_errors(shared):
    room = shared.make_room(enable_dialout=True)["name"]
    r = shared.post(f"/rooms/{room}/dialOut/stop", {"sessionId": str(uuid.uuid4())})
    assert r.status_code == 404 and r.json()["info"] == "Room is not hosting a call"
    shared.emu_post(f"rooms/{room}/join", {})
    r = shared.post(f"/rooms/{room}/dialOut/stop", {"sessionId": str(uuid.uuid4())})
    assert r.status_code == 404 and r.json()["info"] == "No dialout to stop"
    sid = shared.start_ok(room, sipUri="sip:a@x.com")
    assert shared.post(f"/rooms/{room}/dialOut/stop", {"sessionId": sid}).status_code == 200
    r = shared.post(f"/rooms/{room}/dialOut/stop", {"sessionId": sid})
    assert r.status_code == 404 and r.json()["info"] == "No dialout to stop"
    r = shared.post(f"/rooms/{room}/dialOut/stop", {})
    assert r.status_code == 400 and "sessionId" in r.json()["info"]


def test_dtmf(shared):
    room = shared.dial_room()
    sid = shared.start_ok(room, sipUri="sip:noanswer@x.com")
    answered = shared.start_ok(room, sipUri="sip:ivr@x.com")
    path = f"/rooms/{room}/dialOut/sendDTMF"
    for body, names in [
        ({"sessionId": answered, "tones": "12x"}, "tones"),
        ({"sessionId": answered, "tones": "1" * 21}, "tones"),
        ({"sessionId": answered, "tones": ""}, "tones"),
        ({"sessionId": answered}, "tones"),
        ({"sessionId": answered, "tones": "1", "digitDurationMs": 49}, "digitDurationMs"),
        ({"sessionId": answered, "tones": "1", "digitDurationMs": 2001}, "digitDurationMs"),
        ({"tones": "1"}, "sessionId"),
    ]:
        r = shared.post(path, body)
        assert r.status_code == 400 and names in r.json()["info"], (body, r.text)
    r = shared.post(path, {"sessionId": str(uuid.uuid4()), "tones": "1"})
    assert r.status_code == 404 and r.json()["info"] == "No session running"
    shared.wait_leg(sid, lambda leg: leg["state"] == "ringing")
    r = shared.post(path, {"sessionId": sid, "tones": "1"})
    assert r.status_code == 400 and "answered" in r.json()["info"]

    shared.wait_leg(answered, lambda leg: leg["state"] == "answered")
    assert shared.post(path, {"sessionId": answered, "tones": "0123456789ABCD*#"}).status_code == 200
    assert shared.post(path, {"sessionId": answered, "tones": "9", "digitDurationMs": 50}).status_code == 200
    dtmf = shared.leg(answered)["dtmf"]
    assert [(d["tones"], d["digitDurationMs"]) for d in dtmf] == [("0123456789ABCD*#", 500), ("9", 50)]
    shared.post(f"/rooms/{room}/dialOut/stop", {"sessionId": answered})
    r = shared.post(path, {"sessionId": answered, "tones": "1"})
    assert r.status_code == 404 and r.json()["info"] == "No session running"


def test_call_transfer_and_refer(shared):
    room = shared.dial_room()
    sid = shared.start_ok(room, sipUri="sip:agent@x.com")
    shared.wait_leg(sid, lambda leg: leg["state"] == "answered")
    transfer = f"/rooms/{room}/sipCallTransfer"
    refer = f"/rooms/{room}/sipRefer"
    for path, body, names in [
        (transfer, {"sessionId": sid}, "toEndPoint"),
        (transfer, {"sessionId": sid, "toEndPoint": "bob"}, "toEndPoint"),
        (transfer, {"sessionId": sid, "toEndPoint": "sip:b@x.com", "waitBeforeExtensionDialSec": 99}, "wait"),
        (transfer, {"sessionId": sid, "toEndPoint": "sip:b@x.com", "bogus": 1}, "bogus"),
        (refer, {"toEndPoint": "sip:b@x.com"}, "sessionId"),
        (refer, {"sessionId": sid, "toEndPoint": "sip:b@x.com", "callerId": "x"}, "callerId"),
    ]:
        r = shared.post(path, body)
        assert r.status_code == 400 and names in r.json()["info"], (body, r.text)
    for path in (transfer, refer):
        r = shared.post(path, {"sessionId": str(uuid.uuid4()), "toEndPoint": "sip:b@x.com"})
        assert r.status_code == 404 and r.json()["info"] == "invalid sessionId"
    r = shared.post(transfer, {"sessionId": sid, "toEndPoint": "+15551112222", "callerId": "+15550001111"})
    assert r.status_code == 400 and "callerId" in r.json()["info"]  # the id of a purchased number
    second = shared.start_ok(room, sipUri="sip:agent2@x.com")
    shared.wait_leg(second, lambda leg: leg["state"] == "answered")
    r = shared.post(transfer, {"sessionId": sid, "toEndPoint": "+15551112222", "extension": "42"})
    assert r.status_code == 200 and r.json() == {"ok": True}
    assert shared.post(refer, {"sessionId": second, "toEndPoint": "sip:desk@pbx.example"}).json() == {
        "ok": True
    }
    # Each transferred leg has left the room (Daily: "the SIP user is removed from the room").
    assert [(t["kind"], t["toEndPoint"]) for t in shared.leg(sid)["transfers"]] == [
        ("sipCallTransfer", "+15551112222")
    ]
    assert [(t["kind"], t["toEndPoint"]) for t in shared.leg(second)["transfers"]] == [
        ("sipRefer", "sip:desk@pbx.example")
    ]
    assert (
        shared.leg(sid)["end_reason"] == "call-transfer" and shared.leg(second)["end_reason"] == "sip-refer"
    )
    empty = shared.make_room()["name"]
    r = shared.post(f"/rooms/{empty}/sipRefer", {"sessionId": sid, "toEndPoint": "sip:b@x.com"})
    assert r.status_code == 404 and r.json()["info"] == "Room is not hosting a call"


def test_presence(shared):
    room = shared.dial_room()
    sid = shared.start_ok(room, sipUri="sip:carol@x.com", userId="corr-9", displayName="Carol")
    other = shared.start_ok(room, phoneNumber="+15557654321")
    r = shared.get(f"/rooms/{room}/presence")
    assert r.status_code == 200
    body = r.json()
    assert body["total_count"] == 2
    rows = {row["id"]: row for row in body["data"]}
    assert rows[sid]["userId"] == "corr-9" and rows[sid]["userName"] == "Carol"
    assert rows[other]["userName"] == "+15557654321" and rows[other]["userId"] is None
    assert {"id", "room", "userId", "userName", "joinTime", "duration"} <= set(rows[sid])
    assert shared.get(f"/rooms/{room}/presence", params={"userId": "corr-9"}).json()["total_count"] == 1
    everything = shared.get("/presence").json()
    assert {row["user_id"] for row in everything[room]} == {"corr-9", None}
    assert {"room", "id", "user_id", "user_name", "join_time", "duration"} <= set(everything[room][0])
    shared.post(f"/rooms/{room}/dialOut/stop", {"sessionId": sid})
    shared.post(f"/rooms/{room}/dialOut/stop", {"sessionId": other})
    assert shared.get(f"/rooms/{room}/presence").json() == {"total_count": 0, "data": []}
    assert room not in shared.get("/presence").json()


def test_dialin_simulation_and_sip_teardown(shared):
    sip = {**SIP_ON, "num_endpoints": 2, "dialin_config": {"allow_room_start": True}}
    room = shared.make_room(sip=sip)
    name = room["name"]
    endpoints = [room["config"]["sip_uri"]["endpoint"], *room["config"]["sip_uri"]["extra_endpoints"]]
    r = shared.emu_post(f"rooms/{name}/dialin", {"endpoint_index": 1, "display_name": "Dave"})
    assert r.status_code == 200, r.text
    caller = r.json()
    events = shared.events(name)
    assert [e["type"] for e in events] == [
        "meeting.started",
        "dialin.ready",
        "dialin.ready",
        "dialin.connected",
    ]
    assert [e["payload"]["sip_endpoint"] for e in events[1:3]] == endpoints
    assert set(events[1]["payload"]) == {"timestamp", "domain_id", "room", "sip_endpoint"}
    connected = events[3]["payload"]
    assert set(connected) == {
        "timestamp",
        "session_id",
        "sip_from",
        "domain_id",
        "room",
        "display_name",
        "sip_headers",
    }
    assert connected["session_id"] == caller["id"] and connected["display_name"] == "Dave"
    assert shared.emu_post(f"rooms/{name}/dialin", {"endpoint_index": 1}).status_code == 409
    assert shared.get(f"/rooms/{name}/presence").json()["data"][0]["userName"] == "Dave"

    assert shared.post(f"/rooms/{name}", {"properties": {"sip": None}}).status_code == 200
    assert shared.event_types(name)[-2:] == ["dialin.stopped", "meeting.ended"]
    assert shared.leg(caller["id"])["end_reason"] == "sip-disabled"


def test_dialin_without_room_start_waits_for_a_meeting(shared):
    name = shared.make_room(sip=dict(SIP_ON))["name"]
    r = shared.emu_post(f"rooms/{name}/dialin", {})
    assert r.status_code == 409 and "allow_room_start" in r.json()["info"]
    host = shared.emu_post(f"rooms/{name}/join", {}).json()
    caller = shared.emu_post(f"rooms/{name}/dialin", {}).json()
    assert caller["state"] == "connected"
    assert shared.event_types(name) == ["meeting.started", "dialin.ready", "dialin.connected"]
    assert shared.emu_post(f"participants/{host['id']}/leave").status_code == 200
    assert shared.emu_post(f"legs/{caller['id']}/hangup").status_code == 200
    assert shared.event_types(name)[-2:] == ["dialin.stopped", "meeting.ended"]


def test_sip_turned_on_mid_meeting_announces_endpoints(shared):
    room = shared.dial_room()
    shared.start_ok(room, sipUri="sip:a@x.com")
    r = shared.post(f"/rooms/{room}", {"properties": {"sip": {**SIP_ON, "num_endpoints": 3}}})
    ready = [e for e in shared.events(room) if e["type"] == "dialin.ready"]
    assert len(ready) == 3
    sip_uri = r.json()["config"]["sip_uri"]
    assert [e["payload"]["sip_endpoint"] for e in ready] == [sip_uri["endpoint"], *sip_uri["extra_endpoints"]]


def test_far_end_hangup_and_room_deletion(shared):
    room = shared.dial_room()
    a = shared.start_ok(room, sipUri="sip:a@x.com")
    b = shared.start_ok(room, sipUri="sip:b@x.com")
    shared.wait_leg(a, lambda leg: leg["state"] == "answered")
    r = shared.emu_post(f"legs/{a}/hangup")
    assert r.status_code == 200 and r.json()["end_reason"] == "remote-hangup"
    assert shared.emu_post(f"legs/{a}/hangup").status_code == 409
    r = shared.delete(f"/rooms/{room}")
    assert r.status_code == 200 and r.json() == {"deleted": True, "name": room}
    assert shared.leg(b)["state"] == "stopped" and shared.leg(b)["end_reason"] == "room-deleted"
    assert shared.event_types(room)[-2:] == ["dialout.stopped", "meeting.ended"]
    r = shared.post(f"/rooms/{room}/dialOut/stop", {"sessionId": b})
    assert r.status_code == 404 and room in r.json()["info"]


def test_introspection_at_a_glance(shared):
    room = shared.dial_room(sip=dict(SIP_ON))
    shared.start_ok(room, sipUri="sip:a@x.com")
    summary = wait_until(lambda: {x["name"]: x for x in shared.emu("rooms")}.get(room))
    assert summary["sip_enabled"] is True and summary["legs_up"] == 1 and summary["session"]
    state = shared.emu("state")
    assert {"config", "rooms", "legs", "webhooks", "events", "deliveries", "requests"} <= set(state)
    assert state["config"]["api_key"] != shared.api_key, "the key is masked"
    requests = shared.emu("requests")
    assert requests["by_route"]["POST /rooms/{name}/dialOut/start"]["200"] >= 1
