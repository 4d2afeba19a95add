"""The backend (rooms, calls, webhook registry), ratelimit.py and config.py driven directly:
no HTTP, a fake clock."""

from __future__ import annotations

import json

import pytest

from daily_sip.standin.backend import Backend
from daily_sip.standin.clock import FakeClock, ManualScheduler
from daily_sip.standin.config import EmulatorConfig
from daily_sip.standin.errors import ApiError
from daily_sip.standin.ratelimit import DEFAULT, DIALOUT_START, ROOM_DELETE, RateLimiter, classify
from daily_sip.standin.sip_uri import outcome_for, parse_sip_uri
from daily_sip.standin.webhooks import WebhookRegistry

# Daily requires both fields whenever `sip` is an object.
SIP_ON = {"sip_mode": "dial-in", "display_name": "SIP caller"}


@pytest.fixture
def world():
    clock = FakeClock()
    sched = ManualScheduler(clock)
    cfg = EmulatorConfig(
        connect_delay=0.5,
        answer_delay=1.0,
        ring_timeout=30,
        hangup_after=5,
        session_limit=3,
        participant_events=False,
        presence_lag=0,
        enforce_idle_default=False,
    )
    backend = Backend(cfg, clock=clock, scheduler=sched)
    seen: list = []
    backend.subscribe(seen.append)
    return backend, sched, seen


def dial_room(backend: Backend, name: str = "r", **extra) -> str:
    props = {"enable_dialout": True, "dialout_config": {"allow_room_start": True}, **extra}
    backend.create_room({"name": name, "properties": props})
    return name


def types(seen) -> list[str]:
    return [e.type for e in seen]


def test_default_outcome_follows_the_configured_timeline(world):
    backend, sched, seen = world
    room = dial_room(backend)
    leg = backend.start_dialout(room, {"sipUri": "sip:alice@example.com", "userId": "u-1"})
    assert types(seen) == ["meeting.started"]
    sched.advance(0.49)
    assert leg.state == "dialing"
    sched.advance(0.02)
    assert leg.state == "ringing" and types(seen)[-1] == "dialout.connected"
    sched.advance(1.0)
    assert leg.state == "answered" and types(seen)[-1] == "dialout.answered"
    sched.advance(3600)
    assert leg.state == "answered", "a default leg stays up until stopped"
    backend.stop_dialout(room, {"sessionId": leg.id})
    assert types(seen) == [
        "meeting.started",
        "dialout.connected",
        "dialout.answered",
        "dialout.stopped",
        "meeting.ended",
    ]
    connected = seen[1].payload
    assert connected["session_id"] == leg.id and connected["user_id"] == "u-1"
    assert connected["destination"] == "sip:alice@example.com"
    assert isinstance(connected["timestamp"], str) and connected["timestamp"].isdigit()


@pytest.mark.parametrize(
    ("user", "expected", "code"),
    [
        ("busy", ["dialout.error"], "486"),
        ("notfound", ["dialout.error"], "404"),
        ("noanswer", ["dialout.connected", "dialout.error"], "408"),
        ("hangup", ["dialout.connected", "dialout.answered", "dialout.stopped"], None),
    ],
)
def test_magic_outcomes(world, user, expected, code):
    backend, sched, seen = world
    room = dial_room(backend)
    leg = backend.start_dialout(room, {"sipUri": f"sip:{user}@example.com"})
    sched.advance(29)
    if user == "noanswer":
        assert leg.state == "ringing", "noanswer rings until --ring-timeout"
    sched.advance(40)
    leg_events = [t for t in types(seen) if t.startswith("dialout.")]
    assert leg_events == expected
    assert types(seen)[-1] == "meeting.ended"
    if code:
        assert code in seen[-2].payload["error_msg"]
        assert "destination" not in seen[-2].payload
        assert leg.state == "failed" and str(leg.sip_code) == code
    else:
        assert leg.end_reason == "remote-hangup"


@pytest.mark.parametrize(
    ("user", "outcome"),
    [
        ("busy", "busy"),
        ("BUSY", "busy"),
        ("busy-2", "busy"),
        ("noanswer.bridge7", "noanswer"),
        ("NotFound_x", "notfound"),
        ("busybox", "answer"),
        ("hangups", "answer"),
        ("alice", "answer"),
        ("", "answer"),
    ],
)
def test_outcome_keyword_matching(user, outcome):
    assert outcome_for(user) == outcome


def test_sip_uri_parsing_and_rejections():
    uri = parse_sip_uri("sip:bob@example.com;transport=tls?X-a=1&X-Trace=x%20y")
    assert (uri.user, uri.host, uri.headers) == ("bob", "example.com", {"X-a": "1", "X-Trace": "x y"})
    for bad, word in [
        ("bob@example.com", "sip:"),
        ("sip:bob @example.com", "spaces"),
        ("sip:bob@example.com?foo=1", "X-"),
        ("sip:bob@", "host"),
        ("sip:a@b\x01c", "control"),
    ]:
        with pytest.raises(ApiError) as exc:
            parse_sip_uri(bad)
        assert exc.value.status == 400 and word in exc.value.info


def test_session_limit_counts_dialin_callers(world):
    backend, _sched, _seen = world
    room = dial_room(backend, sip={**SIP_ON, "dialin_config": {"allow_room_start": True}})
    backend.simulate_dialin(room, {})
    backend.start_dialout(room, {"sipUri": "sip:a@x.com"})
    backend.start_dialout(room, {"phoneNumber": "+15551230000"})
    with pytest.raises(ApiError) as exc:
        backend.start_dialout(room, {"sipUri": "sip:c@x.com"})
    assert exc.value.status == 400 and "max_sip_pstn_sessions_per_room" in exc.value.info


def test_turning_sip_on_mid_meeting_then_off(world):
    backend, _sched, seen = world
    room = dial_room(backend)
    backend.start_dialout(room, {"sipUri": "sip:a@x.com"})
    backend.update_room(room, {"properties": {"sip": {**SIP_ON, "num_endpoints": 2}}})
    ready = [e.payload["sip_endpoint"] for e in seen if e.type == "dialin.ready"]
    assert len(ready) == 2 and len(set(ready)) == 2
    caller = backend.simulate_dialin(room, {"endpoint_index": 1})
    assert caller.state == "connected"
    backend.update_room(room, {"properties": {"sip": None}})
    assert caller.state == "stopped" and caller.end_reason == "sip-disabled"
    assert "sip_uri" not in backend.room_json(backend.get_room(room))["config"]
    assert types(seen)[-1] == "dialin.stopped", "the dial-out leg keeps the meeting alive"


def test_deleting_a_room_ends_every_leg_first(world):
    backend, sched, seen = world
    room = dial_room(backend)
    a = backend.start_dialout(room, {"sipUri": "sip:a@x.com"})
    sched.advance(2)
    b = backend.start_dialout(room, {"sipUri": "sip:noanswer@x.com"})
    assert backend.delete_room(room) == {"deleted": True, "name": room}
    assert a.state == b.state == "stopped"
    assert types(seen)[-3:] == ["dialout.stopped", "dialout.stopped", "meeting.ended"]
    sched.advance(100)
    assert types(seen)[-1] == "meeting.ended", "no timer may fire for a deleted room"
    with pytest.raises(ApiError) as exc:
        backend.get_room(room)
    assert exc.value.status == 404 and room in exc.value.info


def test_expired_rooms_are_gone_but_say_deleted(world):
    backend, sched, _seen = world
    now = int(backend.clock.now())
    backend.create_room({"name": "old", "properties": {"exp": now + 10}})
    assert backend.list_rooms()["total_count"] == 1
    sched.advance(11)
    assert backend.list_rooms() == {"total_count": 0, "data": []}
    with pytest.raises(ApiError) as exc:
        backend.delete_room("old")
    assert exc.value.status == 404 and exc.value.body()["deleted"] is True
    backend.create_room({"name": "old"})  # the name is free again


def test_dtmf_needs_an_answered_leg(world):
    backend, sched, _seen = world
    room = dial_room(backend)
    leg = backend.start_dialout(room, {"sipUri": "sip:a@x.com"})
    with pytest.raises(ApiError) as exc:
        backend.send_dtmf(room, {"sessionId": leg.id, "tones": "1"})
    assert exc.value.status == 400 and "answered" in exc.value.info
    sched.advance(2)
    backend.send_dtmf(room, {"sessionId": leg.id, "tones": "12#", "digitDurationMs": 100})
    assert [(d["tones"], d["digitDurationMs"]) for d in leg.dtmf] == [("12#", 100)]


def test_rate_limiter_sliding_window():
    clock = FakeClock()
    limiter = RateLimiter(scale=1.0, clock=clock)
    assert classify("POST", "/rooms/{name}/dialOut/start") is DIALOUT_START
    for _ in range(5):
        assert limiter.hit("k", DIALOUT_START) is None
        clock.advance(0.5)
    wait = limiter.hit("k", DIALOUT_START)
    assert wait == pytest.approx(2.5)
    clock.advance(2.5)
    assert limiter.hit("k", DIALOUT_START) is None, "the oldest request aged out"
    assert limiter.hit("other-key", DIALOUT_START) is None, "windows are per key"
    assert RateLimiter(scale=2, clock=clock).allowance(DIALOUT_START) == 10
    assert RateLimiter(scale=0, clock=clock).hit("k", DIALOUT_START) is None


def test_both_windows_of_a_rate_class_hold():
    """Daily: 20 per second and 100 per 5 s by default; room delete 2 per second and 50 per 30 s."""
    clock = FakeClock()
    limiter = RateLimiter(scale=1.0, clock=clock)
    assert classify("GET", "/rooms") is DEFAULT and classify("DELETE", "/rooms/{name}") is ROOM_DELETE
    assert [limiter.hit("k", DEFAULT) for _ in range(20)] == [None] * 20
    assert limiter.hit("k", DEFAULT) == pytest.approx(1.0), "21st in one second: the 1 s window"
    clock.advance(1.0)
    assert sum(limiter.hit("k", DEFAULT) is None for _ in range(25)) == 20, "20 more the next second"
    # (20 per second already caps any 5 s at 100; the delete class shows the long window binding.)
    per_second = []
    for _ in range(26):  # 3 tries a second: 2 pass until the 30 s window holds 50
        per_second.append(sum(limiter.hit("d", ROOM_DELETE) is None for _ in range(3)))
        clock.advance(1.0)
    assert per_second == [2] * 25 + [0]


def test_webhook_registry_circuit_breaker_and_reactivation():
    clock = FakeClock()
    reg = WebhookRegistry(clock)
    hook = reg.create(reg.validate({"url": "http://127.0.0.1:9/h"}, creating=True))
    assert hook.retry_type == "circuit-breaker" and hook.hmac
    assert [reg.record_failure(hook) for _ in range(3)] == [False, False, True]
    assert hook.state == "FAILED" and hook.failed_count == 3
    reg.update(hook.uuid, {})
    assert hook.state == "ACTIVE" and hook.failed_count == 0
    with pytest.raises(ApiError):
        reg.create({"url": "http://127.0.0.1:9/other"})
    with pytest.raises(ApiError) as exc:
        reg.validate({"url": "http://x", "hmac": "not base64!"}, creating=True)
    assert "hmac" in exc.value.info


def test_config_file_json_yaml_and_overrides(tmp_path):
    yml = tmp_path / "c.yaml"
    yml.write_text("ring-timeout: 2.5\nsession_limit: 7\nretry_after: true\n")
    cfg = EmulatorConfig.load(yml, {"session_limit": 9})
    assert (cfg.ring_timeout, cfg.session_limit, cfg.retry_after) == (2.5, 9, True)
    js = tmp_path / "c.json"
    js.write_text(json.dumps({"fault_5xx": 0.25, "seed": 3}))
    assert EmulatorConfig.load(js).fault_5xx == 0.25
    js.write_text(json.dumps({"fault_drop": 2}))
    with pytest.raises(ValueError, match="fault_drop"):
        EmulatorConfig.load(js)
    js.write_text(json.dumps({"no_such_knob": 1}))
    with pytest.raises(ValueError, match="no_such_knob"):
        EmulatorConfig.load(js)


def test_dialin_over_the_limit_is_refused_with_dialin_error(world):
    backend, _sched, seen = world
    room = dial_room(
        backend,
        sip={**SIP_ON, "num_endpoints": 4, "dialin_config": {"allow_room_start": True}},
    )
    for _ in range(3):
        assert backend.simulate_dialin(room, {}).state == "connected"
    refused = backend.simulate_dialin(room, {})
    assert refused.state == "failed"
    assert seen[-1].type == "dialin.error"
    assert "max_sip_pstn_sessions_per_room" in seen[-1].payload["error_msg"]


def test_eject_at_room_exp_ends_calls(world):
    backend, sched, seen = world
    exp = int(backend.clock.now()) + 60
    room = dial_room(backend, exp=exp, eject_at_room_exp=True)
    leg = backend.start_dialout(room, {"sipUri": "sip:a@x.com"})
    sched.advance(59)
    assert leg.state == "answered"
    sched.advance(2)
    assert leg.state == "stopped" and leg.end_reason == "room-expired"
    assert types(seen)[-2:] == ["dialout.stopped", "meeting.ended"]


def test_max_idle_timeout_hangs_up_an_answered_dialout_alone_in_the_room(world):
    backend, sched, _seen = world
    room = dial_room(backend, "idle", dialout_config={"allow_room_start": True, "max_idle_timeout_sec": 5})
    leg = backend.start_dialout(room, {"sipUri": "sip:alice@example.com"})
    sched.advance(1.5)
    assert leg.state == "answered"
    sched.advance(4.9)
    assert leg.state == "answered"
    sched.advance(0.2)
    assert (leg.state, leg.end_reason) == ("stopped", "idle-timeout")
    # Unset: not enforced unless asked for Daily's documented default of 0.
    plain = backend.start_dialout(dial_room(backend, "plain"), {"sipUri": "sip:bob@example.com"})
    sched.advance(3600)
    assert plain.state == "answered"


def test_unset_idle_timeout_is_daily_default_zero_when_enforced():
    clock = FakeClock()
    sched = ManualScheduler(clock)
    backend = Backend(
        EmulatorConfig(connect_delay=0.5, answer_delay=1.0, enforce_idle_default=True),
        clock=clock,
        scheduler=sched,
    )
    leg = backend.start_dialout(dial_room(backend), {"sipUri": "sip:alice@example.com"})
    sched.advance(1.6)
    assert (leg.state, leg.end_reason) == ("stopped", "idle-timeout")


@pytest.mark.parametrize("profile", ["sip-code", "free-text", "stopped", "connected-stopped"])
def test_every_telephony_profile_ends_each_failing_outcome_without_an_answer(profile):
    clock = FakeClock()
    sched = ManualScheduler(clock)
    backend = Backend(
        EmulatorConfig(
            connect_delay=0.5,
            answer_delay=1.0,
            ring_timeout=10,
            telephony_profile=profile,
            participant_events=False,
            presence_lag=0,
        ),
        clock=clock,
        scheduler=sched,
    )
    seen: list = []
    backend.subscribe(seen.append)
    room = dial_room(backend)
    legs = {
        o: backend.start_dialout(room, {"sipUri": f"sip:{o}@pbx.example.com"})
        for o in ("busy", "noanswer", "declined", "unreachable")
    }
    sched.advance(20)
    for outcome, leg in legs.items():
        mine = [e.type for e in seen if (e.payload or {}).get("session_id") == leg.id]
        assert "dialout.answered" not in mine, (profile, outcome)
        assert mine[-1] in ("dialout.error", "dialout.stopped"), (profile, outcome, mine)
        assert ("dialout.connected" in mine) == (
            profile == "connected-stopped" or outcome in ("noanswer", "declined")
        ), (profile, outcome)
    with pytest.raises(ValueError, match="telephony_profile"):
        EmulatorConfig(telephony_profile="carrier-pigeon")


def test_presence_lag_delays_joins_and_leaves():
    clock = FakeClock()
    sched = ManualScheduler(clock)
    backend = Backend(
        EmulatorConfig(connect_delay=0.5, answer_delay=1.0, presence_lag=10, enforce_idle_default=False),
        clock=clock,
        scheduler=sched,
    )
    room = dial_room(backend)
    leg = backend.start_dialout(room, {"sipUri": "sip:alice@example.com", "userId": "u-1"})
    assert backend.room_presence(room)["data"] == []
    sched.advance(10)
    assert [p["userId"] for p in backend.room_presence(room)["data"]] == ["u-1"]
    backend.stop_dialout(room, {"sessionId": leg.id})
    assert [p["userId"] for p in backend.room_presence(room)["data"]] == ["u-1"], "a ghost for a while"
    assert list(backend.all_presence()) == [room]
    sched.advance(10.1)
    assert backend.room_presence(room)["data"] == [] and backend.all_presence() == {}


def test_participant_events_for_every_leg():
    clock = FakeClock()
    sched = ManualScheduler(clock)
    backend = Backend(
        EmulatorConfig(connect_delay=0.5, answer_delay=1.0, presence_lag=0, enforce_idle_default=False),
        clock=clock,
        scheduler=sched,
    )
    seen: list = []
    backend.subscribe(seen.append)
    room = dial_room(backend)
    leg = backend.start_dialout(room, {"sipUri": "sip:alice@example.com", "userId": "u-1"})
    sched.advance(5)
    backend.stop_dialout(room, {"sessionId": leg.id})
    assert types(seen) == [
        "meeting.started",
        "participant.joined",
        "dialout.connected",
        "dialout.answered",
        "dialout.stopped",
        "participant.left",
        "meeting.ended",
    ]
    joined, left = seen[1].payload, seen[5].payload
    assert (joined["session_id"], joined["user_id"], joined["room"]) == (leg.id, "u-1", room)
    assert left["duration"] == 5


def test_call_transfers_send_calltransfer_webhooks(world):
    backend, sched, seen = world
    room = dial_room(backend)
    leg = backend.start_dialout(room, {"sipUri": "sip:alice@example.com"})
    other = backend.start_dialout(room, {"sipUri": "sip:bob@example.com"})
    sched.advance(1.5)
    backend.sip_call_transfer(room, {"sessionId": leg.id, "toEndPoint": "sip:desk@pbx.example.com"})
    backend.sip_refer(room, {"sessionId": other.id, "toEndPoint": "sip:busy@pbx.example.com"})
    sched.advance(1.0)
    transfers = [
        (e.type, e.payload.get("complete_status"), e.payload["is_sip_refer"])
        for e in seen
        if e.type.startswith("calltransfer.")
    ]
    assert transfers == [
        ("calltransfer.triggered", None, False),
        ("calltransfer.initiated", None, False),
        ("calltransfer.triggered", None, True),
        ("calltransfer.initiated", None, True),
        ("calltransfer.answered", None, False),
        ("calltransfer.completed", "completed", False),
        ("calltransfer.completed", "busy", True),
    ]
    completed = [e.payload for e in seen if e.type == "calltransfer.completed"]
    assert completed[1]["refer_sip_response_code"] == "202"
    assert completed[0]["to_endpoint"] == "sip:desk@pbx.example.com" and completed[0]["session_id"] == leg.id


def test_a_transferred_leg_leaves_the_room():
    # Daily: "the SIP user is removed from the room"; participant.left and dialout.stopped fire
    # (https://docs.daily.co/docs/guides/features/dial-in-dial-out/transfers).
    clock = FakeClock()
    sched = ManualScheduler(clock)
    backend = Backend(
        EmulatorConfig(connect_delay=0.5, answer_delay=1.0, presence_lag=0, enforce_idle_default=False),
        clock=clock,
        scheduler=sched,
    )
    seen: list = []
    backend.subscribe(seen.append)
    room = dial_room(backend)
    web = backend.join_web(room, {"user_name": "host"})
    for kind in ("sip_call_transfer", "sip_refer"):
        leg = backend.start_dialout(room, {"sipUri": "sip:alice@example.com", "userId": kind})
        sched.advance(1.5)
        seen.clear()
        getattr(backend, kind)(room, {"sessionId": leg.id, "toEndPoint": "sip:desk@pbx.example.com"})
        assert types(seen)[:4] == [
            "calltransfer.triggered",
            "calltransfer.initiated",
            "dialout.stopped",
            "participant.left",
        ], kind
        assert not leg.active and leg.transfers[0]["toEndPoint"] == "sip:desk@pbx.example.com"
        assert [p["userId"] for p in backend.room_presence(room)["data"]] == [None], "only the host"
        with pytest.raises(ApiError, match="invalid sessionId"):
            backend.sip_refer(room, {"sessionId": leg.id, "toEndPoint": "sip:desk@pbx.example.com"})
    assert web.id in backend.rooms[room].participants
