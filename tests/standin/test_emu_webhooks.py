"""Webhook management and delivery against a real local sink (private stand-in with a
0.5 s webhook timeout and a 0.05 s exponential retry base)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import os

import pytest

from .support import wait_until

SECRET = base64.b64encode(os.urandom(32)).decode()
WEBHOOK_FIELDS = {
    "uuid",
    "url",
    "hmac",
    "basicAuth",
    "retryType",
    "eventTypes",
    "state",
    "failedCount",
    "lastMomentPushed",
    "domainId",
    "createdAt",
    "updatedAt",
}


def signature_ok(secret: str, received) -> bool:
    """Daily's scheme, computed here independently of the stand-in's code."""
    ts = received.headers["x-webhook-timestamp"]
    mac = hmac.new(base64.b64decode(secret), ts.encode() + b"." + received.raw, hashlib.sha256)
    expected = base64.b64encode(mac.digest()).decode()
    return hmac.compare_digest(expected, received.headers["x-webhook-signature"])


def create_hook(emu, sink, **extra) -> dict:
    r = emu.post("/webhooks", {"url": sink.url, "hmac": SECRET, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def run_call(emu) -> str:
    """A default dial-out that answers and is stopped: 5 events in its room."""
    room = emu.dial_room()
    sid = emu.start_ok(room, sipUri="sip:alice@x.com")
    emu.wait_leg(sid, lambda leg: leg["state"] == "answered")
    assert emu.post(f"/rooms/{room}/dialOut/stop", {"sessionId": sid}).status_code == 200
    return room


def hook_state(emu, hook_id: str) -> dict:
    return emu.get(f"/webhooks/{hook_id}").json()


def test_create_sends_a_signed_verification_ping(own, sink):
    hook = create_hook(own, sink, basicAuth="dXNlcjpwYXNz", eventTypes=["dialout.answered"])
    assert set(hook) == WEBHOOK_FIELDS
    assert hook["state"] == "ACTIVE" and hook["failedCount"] == 0
    assert hook["retryType"] == "circuit-breaker" and hook["hmac"] == SECRET
    assert hook["eventTypes"] == ["dialout.answered"] and hook["url"] == sink.url
    [ping] = sink.pings()
    assert ping.json == {"test": "test"}
    assert signature_ok(SECRET, ping)
    assert ping.headers["x-webhook-timestamp"].isdigit()
    assert ping.headers["authorization"] == "Basic dXNlcjpwYXNz"
    assert ping.headers["content-type"] == "application/json"

    assert own.get("/webhooks").json() == [hook]
    assert own.get(f"/webhooks/{hook['uuid']}").json() == hook
    r = own.post("/webhooks", {"url": sink.url})
    assert r.status_code == 400 and "one webhook" in r.json()["info"]


def test_generated_secret_is_base64_and_signs_the_ping(own, sink):
    r = own.post("/webhooks", {"url": sink.url})
    assert r.status_code == 200
    secret = r.json()["hmac"]
    assert len(base64.b64decode(secret, validate=True)) >= 16
    assert signature_ok(secret, sink.pings()[0])


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({}, "url"),
        ({"url": "ftp://x"}, "url"),
        ({"url": "http://127.0.0.1:1/h", "hmac": "not*base64"}, "hmac"),
        ({"url": "http://127.0.0.1:1/h", "retryType": "forever"}, "retryType"),
        ({"url": "http://127.0.0.1:1/h", "eventTypes": "dialout.answered"}, "eventTypes"),
        ({"url": "http://127.0.0.1:1/h", "eventTypes": ["dialout.exploded.x", "bogus"]}, "bogus"),
        ({"url": "http://127.0.0.1:1/h", "colour": "red"}, "colour"),
    ],
)
def test_create_validation(own, body, names):
    r = own.post("/webhooks", body)
    assert r.status_code == 400 and r.json()["error"] == "invalid-request-error"
    assert names in r.json()["info"]


def test_failed_verification_refuses_the_webhook(own, sink):
    sink.status = 500
    r = own.post("/webhooks", {"url": sink.url})
    assert r.status_code == 400 and "500" in r.json()["info"]
    sink.status, sink.delay = 200, 1.0
    r = own.post("/webhooks", {"url": sink.url})
    assert r.status_code == 400 and "timeout" in r.json()["info"]
    r = own.post("/webhooks", {"url": "http://127.0.0.1:9/closed"})
    assert r.status_code == 400 and "verification" in r.json()["info"]
    assert own.get("/webhooks").json() == []
    assert [d["result"] for d in own.emu("deliveries", kind="verification")] == ["failed"] * 3


def test_deliveries_are_signed_ordered_envelopes(own, sink):
    hook = create_hook(own, sink)
    room = run_call(own)
    expected = own.events(room)
    wait_until(lambda: len(sink.events()) >= len(expected) == 5)
    got = sink.events()
    assert [r.json["type"] for r in got] == [e["type"] for e in expected]
    assert [r.json["id"] for r in got] == [e["id"] for e in expected]
    assert len({r.json["id"] for r in got}) == 5
    for received, event in zip(got, expected, strict=True):
        body = received.json
        assert set(body) == {"version", "type", "id", "payload", "event_ts"}
        assert body["version"] == "1.0.0" and body["payload"] == event["payload"]
        assert isinstance(body["event_ts"], float)
        assert signature_ok(SECRET, received)
        assert received.headers["content-type"] == "application/json"
        assert "authorization" not in received.headers
    state = hook_state(own, hook["uuid"])
    assert state["lastMomentPushed"] is not None and state["failedCount"] == 0


def test_event_type_filter(own, sink):
    create_hook(own, sink, eventTypes=["dialout.answered", "dialout.stopped"])
    run_call(own)
    wait_until(lambda: len(sink.events()) >= 2)
    run_call(own)
    wait_until(lambda: len(sink.events()) >= 4)
    assert [r.json["type"] for r in sink.events()] == ["dialout.answered", "dialout.stopped"] * 2


def test_circuit_breaker_trips_and_update_reactivates(own, sink):
    hook = create_hook(own, sink)
    sink.status = 500
    run_call(own)  # five events: three failures trip the breaker, two are skipped
    state = wait_until(lambda: (s := hook_state(own, hook["uuid"]))["state"] == "FAILED" and s)
    assert state["failedCount"] == 3
    rows = wait_until(lambda: (d := own.emu("deliveries", kind="event")) and len(d) >= 5 and d)
    assert [d["result"] for d in rows] == ["failed"] * 3 + ["skipped"] * 2
    assert rows[0]["status_code"] == 500
    assert len(sink.events()) == 3, "nothing is sent while FAILED"

    r = own.post(f"/webhooks/{hook['uuid']}", {})
    assert r.status_code == 400 and "500" in r.json()["info"], "the re-verification failed too"
    assert hook_state(own, hook["uuid"])["state"] == "FAILED"

    sink.status = 200
    pings = len(sink.pings())
    r = own.post(f"/webhooks/{hook['uuid']}", {"url": sink.url})
    assert r.status_code == 200
    assert r.json()["state"] == "ACTIVE" and r.json()["failedCount"] == 0
    assert len(sink.pings()) == pings + 1
    run_call(own)
    wait_until(lambda: len(sink.events()) >= 8)


def test_slow_receivers_count_as_failures(own, sink):
    hook = create_hook(own, sink, eventTypes=["meeting.started"])
    sink.delay = 1.0  # the stand-in waits 0.5 s
    own.start_ok(own.dial_room(), sipUri="sip:a@x.com")
    row = wait_until(lambda: own.emu("deliveries", kind="event"))[0]
    assert row["result"] == "failed" and "timeout" in row["error"]
    assert hook_state(own, hook["uuid"])["failedCount"] == 1


def test_exponential_retries_until_success(own, sink):
    hook = create_hook(own, sink, retryType="exponential", eventTypes=["meeting.started"])
    sink.script = [500, 503]
    own.start_ok(own.dial_room(), sipUri="sip:a@x.com")
    rows = wait_until(lambda: (d := own.emu("deliveries", kind="event")) and d[-1]["result"] == "ok" and d)
    assert [(d["attempt"], d["result"]) for d in rows] == [(1, "failed"), (2, "failed"), (3, "ok")]
    assert len({d["event_id"] for d in rows}) == 1
    gaps = [b["ts"] - a["ts"] for a, b in itertools.pairwise(rows)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1, f"backoff doubles: {gaps}"
    state = hook_state(own, hook["uuid"])
    assert state["state"] == "ACTIVE" and state["failedCount"] == 0


def test_exponential_gives_up_after_five_attempts_but_never_fails(own, sink):
    hook = create_hook(own, sink, retryType="exponential", eventTypes=["meeting.started"])
    sink.status = 500
    own.start_ok(own.dial_room(), sipUri="sip:a@x.com")
    rows = wait_until(
        lambda: (d := own.emu("deliveries", kind="event")) and d[-1]["result"] == "dropped" and d
    )
    assert [d["result"] for d in rows] == ["failed"] * 5 + ["dropped"]
    state = hook_state(own, hook["uuid"])
    assert state["state"] == "ACTIVE" and state["failedCount"] == 5


def test_delete_stops_delivery(own, sink):
    hook = create_hook(own, sink)
    r = own.delete(f"/webhooks/{hook['uuid']}")
    assert r.status_code == 200 and r.content == b""
    for call in (
        lambda: own.get(f"/webhooks/{hook['uuid']}"),
        lambda: own.post(f"/webhooks/{hook['uuid']}", {}),
        lambda: own.delete(f"/webhooks/{hook['uuid']}"),
    ):
        r = call()
        assert r.status_code == 404 and r.json()["error"] == "not-found"
    run_call(own)
    assert own.get("/webhooks").json() == []
    assert sink.events() == [] and own.emu("deliveries", kind="event") == []
    create_hook(own, sink)  # the domain's slot is free again
