"""`daily-sip doctor` against real stand-in processes, as a user runs it: one line per check, exit code.

The stand-in plays Daily: every check green on a healthy domain; red, with a fix on the same line,
for a wrong key, a webhook Daily marked FAILED, and a domain that may not dial out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.standin.support import Sink

FAST = {
    "rate_limit_scale": 0,
    "connect_delay": 0.05,
    "answer_delay": 0.1,
    "webhook_timeout": 5,  # the verification ping waits on a loaded machine too
    "presence_lag": 0,  # the lag has a test of its own
    "webhook_retry_base": 0.05,
}


def doctor(emu, *args: str, key: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAILY_API_KEY": key or emu.api_key, "DAILY_API_URL": emu.base_url, "COLUMNS": "300"}
    env.pop("DAILY_WEBHOOK_SECRET", None)
    return subprocess.run(
        [sys.executable, "-m", "daily_sip.cli", "doctor", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def lines(out: str) -> dict[str, str]:
    """``{check name: its line}`` for the lines that start with ✔ or ✘."""
    found = {}
    for line in out.splitlines():
        if line[:1] in "✔✘":
            found[line[2:].split("  ")[0].strip()] = line
    return found


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.close()


def add_webhook(emu, url: str) -> None:
    r = httpx.post(f"{emu.base_url}/webhooks", json={"url": url}, headers=emu.headers(), timeout=10)
    r.raise_for_status()


def test_every_check_green_on_a_healthy_domain(start_emulator, sink):
    emu = start_emulator(**FAST)
    add_webhook(emu, sink.url)
    result = doctor(emu, "--webhook-url", sink.url)
    checks = lines(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(checks) == {
        "key and URL",
        "domain",
        "dial-out",
        "SIP dial-in",
        "webhook",
        "receiver",
        "rate limits",
    }
    assert all(line.startswith("✔") for line in checks.values()), result.stdout
    assert "nothing dialled" in checks["dial-out"]
    assert emu.introspect("legs") == []  # the probe dialled nothing
    assert emu.introspect("rooms") == []  # and its room is gone
    # The receiver was pinged like Daily pings it: signed with the webhook's own hmac.
    ping = sink.pings()[-1]
    assert "x-webhook-signature" in ping.headers


def test_wrong_key_is_one_red_line_with_the_fix(start_emulator):
    emu = start_emulator(**FAST)
    result = doctor(emu, key="not-the-key")
    assert result.returncode == 1
    checks = lines(result.stdout)
    assert list(checks) == ["key and URL"]
    assert checks["key and URL"].startswith("✘")
    assert "refused the API key" in checks["key and URL"] and "check DAILY_API_KEY" in checks["key and URL"]
    assert "not-the-key" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_a_failed_webhook_is_red_with_how_to_reactivate_it(start_emulator, sink):
    emu = start_emulator(**FAST)
    add_webhook(emu, sink.url)
    sink.status = 500
    h = emu.headers()
    for n in range(4):  # each room's meeting/participant events are deliveries that fail
        httpx.post(f"{emu.base_url}/rooms", json={"name": f"r{n}"}, headers=h).raise_for_status()
        httpx.post(f"{emu.root}/_emulator/rooms/r{n}/join", json={"user_name": "w"}).raise_for_status()
    deadline = time.monotonic() + 20
    while httpx.get(f"{emu.base_url}/webhooks", headers=h).json()[0]["state"] != "FAILED":
        assert time.monotonic() < deadline, "the stand-in never marked the webhook FAILED"
        time.sleep(0.1)
    sink.status = 200
    result = doctor(emu, "--webhook-url", sink.url)
    checks = lines(result.stdout)
    assert result.returncode == 1
    assert checks["webhook"].startswith("✘ webhook") and "FAILED" in checks["webhook"]
    assert "fix: " in checks["webhook"] and f"daily-sip run --webhook-url {sink.url}" in checks["webhook"]
    assert checks["receiver"].startswith("✔")  # the endpoint itself answers again


def test_a_domain_that_may_not_dial_out_is_red_with_the_fix(start_emulator, sink):
    emu = start_emulator(dialout_allowed=False, **FAST)
    add_webhook(emu, sink.url)
    result = doctor(emu, "--webhook-url", sink.url)
    checks = lines(result.stdout)
    assert result.returncode == 1
    assert checks["dial-out"].startswith("✘") and "403" in checks["dial-out"]
    assert "fix: dial-out needs a paid plan" in checks["dial-out"]
    others = {k: v for k, v in checks.items() if k != "dial-out"}
    assert all(line.startswith("✔") for line in others.values()), result.stdout
    assert emu.introspect("rooms") == []


def test_dial_refuses_a_non_sip_destination_before_anything(start_emulator):
    emu = start_emulator(**FAST)
    result = doctor(emu, "--dial", "+15551234567")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("--dial: '+15551234567' is not a SIP URI")
    assert emu.introspect("requests")["total"] == 0


def dial(emu, tmp_path, name: str, uri: str, scenario: str) -> dict:
    out = tmp_path / f"{name}.json"
    result = doctor(
        emu,
        "--dial",
        uri,
        "--scenario",
        scenario,
        "--fingerprint-out",
        str(out),
        "--presence-interval",
        "0.3",
        "--hold-seconds",
        "0.5",
        "--max-seconds",
        "10",
    )
    assert out.exists(), result.stdout + result.stderr
    assert "✔ cleanup" in result.stdout, result.stdout
    assert emu.introspect("rooms") == [] and emu.introspect("state")["webhooks"] == []
    return json.loads(out.read_text())


def test_a_fingerprint_recorded_from_the_stand_in_replays_the_same_event_sequence(start_emulator, tmp_path):
    # Recorded under a non-default profile, so a replay that ignored the file would differ.
    recorded_on = start_emulator(telephony_profile="connected-stopped", **FAST)
    first = dial(recorded_on, tmp_path, "first", "sip:busy@pbx.example.com", "busy")
    assert first["outcomes"] == {
        "busy": {"events": ["dialout.connected", "dialout.stopped"], "sip_code": 486}
    }
    sequence = first["observation"]["event_sequence"]
    assert [t for t in sequence if t.startswith("dialout.")] == ["dialout.connected", "dialout.stopped"]

    text = (tmp_path / "first.json").read_text()
    assert recorded_on.api_key not in text and "daily-sip-doctor-dial-" not in text  # room names redacted
    legs = [leg["id"] for leg in recorded_on.introspect("legs")]
    assert legs and not any(leg in text for leg in legs)  # session ids too
    raw = json.loads((tmp_path / "first.raw.json").read_text())  # the user's own, unredacted copy
    assert [e["body"]["type"] for e in raw["events"]] == sequence
    assert all("x-webhook-signature" in e["headers"] and e["signature_ok"] for e in raw["events"])
    assert raw["session_id"] in legs
    assert recorded_on.introspect("state")["domain_id"] not in text
    assert first["observation"]["presence"]["leg_listed"] is True

    replayed_on = start_emulator(telephony_profile=str(tmp_path / "first.json"), **FAST)
    again = dial(replayed_on, tmp_path, "again", "sip:busy@pbx.example.com", "busy")
    assert again["observation"]["event_sequence"] == sequence
    assert again["outcomes"] == first["outcomes"]

    default = start_emulator(**FAST)  # the built-in sip-code profile: busy is one dialout.error
    other = dial(default, tmp_path, "default", "sip:busy@pbx.example.com", "busy")
    assert other["observation"]["event_sequence"] != sequence


def test_dial_leaves_a_webhook_that_points_elsewhere_alone_unless_told_then_points_it_back(
    start_emulator, sink, tmp_path
):
    emu = start_emulator(**FAST)
    secret = "c2VjcmV0LW9mLXRoZS11c2Vycy1hcHA="
    r = httpx.post(
        f"{emu.base_url}/webhooks",
        json={
            "url": sink.url,
            "hmac": secret,
            "eventTypes": ["recording.ready-to-download", "dialout.answered"],
        },
        headers=emu.headers(),
    )
    r.raise_for_status()
    before = r.json()

    refused = doctor(emu, "--dial", "sip:hangup@pbx.example.com", "--max-seconds", "5")
    assert refused.returncode == 2
    assert f"the domain's webhook points at {sink.url}" in refused.stderr
    assert "--take-over-webhook" in refused.stderr
    assert [r["route"] for r in emu.introspect("requests")["recent"]].count("POST /webhooks/{uuid}") == 0

    took = doctor(
        emu,
        "--dial",
        "sip:hangup@pbx.example.com",
        "--take-over-webhook",
        "--hold-seconds",
        "0.5",
        "--presence-interval",
        "0.3",
        "--max-seconds",
        "10",
        "--fingerprint-out",
        str(tmp_path / "fp.json"),
    )
    assert "pointed the webhook back at " + sink.url in took.stdout, took.stdout + took.stderr
    after = httpx.get(f"{emu.base_url}/webhooks", headers=emu.headers()).json()
    assert [(h["uuid"], h["url"], h["hmac"], h["eventTypes"], h["state"]) for h in after] == [
        (before["uuid"], sink.url, secret, before["eventTypes"], "ACTIVE")
    ]
    assert emu.introspect("rooms") == []


def test_dial_against_daily_without_a_public_webhook_url_is_one_line_before_anything(tmp_path):
    env = {**os.environ, "DAILY_API_KEY": "any-key", "DAILY_API_URL": "https://api.daily.co/v1"}
    result = subprocess.run(
        [sys.executable, "-m", "daily_sip.cli", "doctor", "--dial", "sip:me@pbx.example.com"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("--dial: https://api.daily.co/v1 cannot send webhooks to this machine")
    assert "give --webhook-url https://<public URL>/webhook" in result.stderr


def test_dial_measures_how_far_presence_lags_behind_the_call(start_emulator, tmp_path):
    emu = start_emulator(**{**FAST, "presence_lag": 1.5})
    profile = dial(emu, tmp_path, "lag", "sip:bridge@pbx.example.com", "answer-hangup")
    presence = profile["observation"]["presence"]
    assert presence["leg_listed"] is True
    assert 1.5 <= presence["first_listed_after_s"] < 6, presence
    assert presence["gone_after_end_s"] is not None and presence["gone_after_end_s"] >= 1.0, presence
    timeline = presence["timeline"]
    assert not timeline[0]["leg_listed"] and any(s["leg_listed"] for s in timeline)
