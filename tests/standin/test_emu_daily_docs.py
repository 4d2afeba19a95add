"""Where Daily documents a behaviour, the stand-in has it (issue 22's mismatches, one test each).

In-process tests drive the backend on a fake clock; the webhook test goes over real sockets to a
real sink and verifies the signature with Node's own ``JSON.stringify``, as Daily's snippet does.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time

import pytest

from daily_sip.standin.backend import Backend
from daily_sip.standin.clock import FakeClock, ManualScheduler
from daily_sip.standin.config import EmulatorConfig
from daily_sip.standin.errors import ApiError

from .support import FAST, wait_until

SIP_ON = {"sip_mode": "dial-in", "display_name": "SIP caller"}


def make(**cfg):
    clock = FakeClock()
    sched = ManualScheduler(clock)
    settings = {"connect_delay": 0.5, "answer_delay": 1.0, "presence_lag": 0, **cfg}
    backend = Backend(EmulatorConfig(**settings), clock=clock, scheduler=sched)
    seen: list = []
    backend.subscribe(seen.append)
    return backend, sched, seen


def dial_room(backend, name="r", **dialout_config):
    backend.create_room(
        {
            "name": name,
            "properties": {
                "enable_dialout": True,
                "dialout_config": {"allow_room_start": True, **dialout_config},
            },
        }
    )
    return name


# -- 1. exp / nbf -----------------------------------------------------------------------------


def test_pipecat_room_body_with_a_float_exp_is_accepted(own):
    # The body pipecat's DailyRESTHelper.create_room sends: DailyRoomParams with
    # `exp=time.time() + 3600` (a float) and dial-out enabled.
    exp = time.time() + 3600
    body = {
        "name": "pipecat-room",
        "privacy": "public",
        "properties": {
            "exp": exp,
            "nbf": time.time() - 5,
            "eject_at_room_exp": False,
            "enable_dialout": True,
            "start_video_off": False,
            "sip": {"display_name": "sip-dialin", "video": False, "sip_mode": "dial-in", "num_endpoints": 1},
        },
    }
    r = own.post("/rooms", body)
    assert r.status_code == 200, r.text
    room = r.json()
    assert room["config"]["exp"] == pytest.approx(exp)
    assert room["config"]["sip_uri"]["endpoint"]
    assert own.get("/rooms/pipecat-room").status_code == 200  # not treated as expired


# -- 2. max_idle_timeout_sec --------------------------------------------------------------------


def test_idle_timeout_counts_only_time_alone():
    backend, sched, _ = make(enforce_idle_default=True)
    room = dial_room(backend, max_idle_timeout_sec=5)
    leg = backend.start_dialout(room, {"sipUri": "sip:alice@example.com"})
    sched.advance(1.5)  # answered, alone
    web = backend.join_web(room, {"user_name": "host"})  # company at +1.5 s
    sched.advance(60)
    assert leg.state == "answered", "a leg with company is never idle"
    backend.leave_web(web.id)  # alone again: the timeout runs once more
    sched.advance(4.9)
    assert leg.state == "answered"
    sched.advance(0.2)
    assert (leg.state, leg.end_reason) == ("stopped", "idle-timeout")


def test_post_conversation_timeout_applies_after_the_others_leave():
    backend, sched, _ = make()
    room = dial_room(backend, max_idle_timeout_sec=600, max_idle_timeout_post_conversation_sec=2)
    web = backend.join_web(room, {"user_name": "host"})
    leg = backend.start_dialout(room, {"sipUri": "sip:alice@example.com"})
    sched.advance(1.5)
    backend.leave_web(web.id)
    sched.advance(1.9)
    assert leg.state == "answered"
    sched.advance(0.2)
    assert (leg.state, leg.end_reason) == ("stopped", "idle-timeout")


def test_unset_idle_timeout_is_daily_default_zero_out_of_the_box():
    assert EmulatorConfig().enforce_idle_default is True
    backend, sched, _ = make()
    leg = backend.start_dialout(dial_room(backend), {"sipUri": "sip:alice@example.com"})
    sched.advance(1.6)
    assert (leg.state, leg.end_reason) == ("stopped", "idle-timeout")
    # With someone in the room the default 0 does not bite.
    room = dial_room(backend, "company")
    backend.join_web(room, {"user_name": "host"})
    kept = backend.start_dialout(room, {"sipUri": "sip:bob@example.com"})
    sched.advance(60)
    assert kept.state == "answered"


# -- 3. transfers: see test_emu_backend.test_a_transferred_leg_leaves_the_room ------------------

# -- 4. webhook bodies as JSON.stringify writes them ------------------------------------------

NODE_VERIFIER = r"""
const crypto = require('crypto');
const [secret, ts, sig, bodyB64] = process.argv.slice(1);
const event = JSON.parse(Buffer.from(bodyB64, 'base64').toString('utf8'));
// Daily's snippet: HMAC-SHA256 over `${timestamp}.${JSON.stringify(event)}` with the base64 secret.
const mac = crypto.createHmac('sha256', Buffer.from(secret, 'base64'))
  .update(ts + '.' + JSON.stringify(event)).digest('base64');
process.stdout.write(mac === sig ? 'ok' : 'bad');
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run Daily's own verifier")
def test_a_receiver_verifying_over_json_stringify_accepts_every_delivery(launcher, sink):
    own = launcher(**{**FAST, "participant_events": True})
    secret = base64.b64encode(os.urandom(32)).decode()
    r = own.post("/webhooks", {"url": sink.url, "hmac": secret})
    assert r.status_code == 200, r.text
    room = own.dial_room()
    assert own.emu_post(f"rooms/{room}/join", {"user_name": "Zürich Büro 東京"}).status_code == 200
    sid = own.start_ok(room, sipUri="sip:m%C3%BCller@pbx.example.com", displayName="Müller ☎")
    own.wait_leg(sid, lambda leg: leg["state"] == "answered")
    own.post(f"/rooms/{room}/dialOut/stop", {"sessionId": sid})
    wait_until(lambda: sum(b'"dialout.stopped"' in r.raw for r in sink.requests) == 1)
    events = [r for r in sink.requests if b'"type"' in r.raw]
    assert any("Zürich".encode() in r.raw for r in events), "non-ASCII goes out as UTF-8, unescaped"
    verdicts = [
        subprocess.run(
            [
                "node",
                "-e",
                NODE_VERIFIER,
                secret,
                r.headers["x-webhook-timestamp"],
                r.headers["x-webhook-signature"],
                base64.b64encode(r.raw).decode(),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        for r in events
    ]
    assert verdicts == ["ok"] * len(events), [json.loads(r.raw)["type"] for r in events]


# -- 5. presence ---------------------------------------------------------------------------------


def test_presence_defaults_to_dailys_lag_and_can_leave_ringing_calls_out():
    assert EmulatorConfig().presence_lag == 15.0
    backend, sched, _ = make(presence_ringing=False, enforce_idle_default=False, ring_timeout=30)
    room = dial_room(backend)
    ringing = backend.start_dialout(room, {"sipUri": "sip:noanswer@example.com", "userId": "ring"})
    answered = backend.start_dialout(room, {"sipUri": "sip:alice@example.com", "userId": "ok"})
    sched.advance(5)
    assert ringing.state == "ringing" and answered.state == "answered"
    assert [p["userId"] for p in backend.room_presence(room)["data"]] == ["ok"]


# -- 6. warnings, participant payloads, dial-in host ---------------------------------------------


def test_phone_dialout_with_wideband_only_codecs_warns():
    backend, sched, seen = make(enforce_idle_default=False)
    room = dial_room(backend)
    leg = backend.start_dialout(room, {"phoneNumber": "+14155550100", "codecs": {"audio": ["OPUS"]}})
    ok = backend.start_dialout(room, {"phoneNumber": "+14155550101", "codecs": {"audio": ["PCMU"]}})
    sched.advance(2)
    warnings = [e for e in seen if e.type == "dialout.warning"]
    assert [w.payload["session_id"] for w in warnings] == [leg.id] and ok.state == "answered"
    assert warnings[0].payload["destination"] == "+14155550100"  # shaped like dialout.connected


def test_dialin_caller_without_the_rooms_codec_gets_a_dialin_warning():
    backend, _sched, seen = make()
    backend.create_room(
        {
            "name": "sip",
            "properties": {
                "sip": {**SIP_ON, "codecs": {"audio": ["OPUS"]}, "dialin_config": {"allow_room_start": True}}
            },
        }
    )
    leg = backend.simulate_dialin("sip", {"codecs": ["PCMU"]})
    [warning] = [e for e in seen if e.type == "dialin.warning"]
    assert warning.payload["session_id"] == leg.id
    assert warning.payload["error_msg"] == "Dialin codec did not match, using fallback."
    with pytest.raises(ApiError):
        backend.simulate_dialin("sip", {"codecs": "PCMU"})


def test_participant_payloads_carry_dailys_fields():
    backend, sched, seen = make(enforce_idle_default=False)
    room = dial_room(backend)
    backend.update_room(room, {"properties": {"exp": 4_000_000_000, "eject_at_room_exp": True}})
    web = backend.join_web(room, {"user_name": "host"})
    sched.advance(2.25)
    backend.leave_web(web.id)
    joined = next(e.payload for e in seen if e.type == "participant.joined")
    left = next(e.payload for e in seen if e.type == "participant.left")
    assert joined["will_eject_at"] == 4_000_000_000
    assert joined["permissions"]["canReceive"] == {"base": True}
    assert left["duration"] == 2.25 and isinstance(left["duration"], float)


@pytest.mark.parametrize(
    ("provider", "host"),
    [
        (None, "daily-standin-app.dapp.signalwire.com"),
        ("signalwire", "daily-standin-app.dapp.signalwire.com"),
        ("daily", "standin.sip-us.daily.co"),
    ],
)
def test_dialin_host_follows_sip_provider(provider, host):
    backend, _sched, _seen = make()
    sip = {**SIP_ON, **({"provider": provider} if provider else {})}
    room = backend.create_room({"name": "h", "properties": {"sip": sip}})
    assert room.sip_endpoints == [f"sip:h.0@{host}"]
