"""Rate limits, injected faults and the command line (each test runs its own stand-in)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx

from .support import FAST, launch, stop, wait_until


def statuses(emu, n: int, path: str = "/rooms") -> list[int]:
    return [emu.get(path).status_code for _ in range(n)]


def test_rate_limit_classes_at_a_fifth_of_dailys_allowance(launcher):
    emu = launcher(rate_limit_scale=0.2, connect_delay=0.05, answer_delay=0.05)
    room = emu.dial_room()  # 1 request in the default class (20 per 5 s at this scale)
    emu.start_ok(room, sipUri="sip:a@x.com")  # dialOut/start: 1 per 5 s at this scale
    r = emu.start(room, sipUri="sip:b@x.com")
    assert r.status_code == 429 and r.json()["error"] == "rate-limit-error"
    assert set(r.json()) == {"error", "info"} and "Retry-After" not in r.headers

    # Default class at this scale: 4 per second and 20 per 5 s (exact windows: test_emu_backend).
    got = statuses(emu, 25)
    assert got[:3] == [200] * 3 and 429 in got, "default class, independent of dialOut"
    assert got.count(200) <= 19
    deletes = [emu.delete(f"/rooms/gone-{i}").status_code for i in range(11)]
    assert deletes[0] == 404 and 429 in deletes and deletes.count(404) <= 10, (
        "DELETE /rooms/:name: 1 per second and 10 per 30 s at this scale"
    )

    counts = emu.emu("requests")
    assert counts["rate_limited"] == 1 + got.count(429) + deletes.count(429)
    assert counts["by_route"]["POST /rooms/{name}/dialOut/start"] == {"200": 1, "429": 1}


def test_scale_two_doubles_the_allowance_and_retry_after_is_optional(launcher):
    emu = launcher(rate_limit_scale=2, retry_after=True)
    got = [emu.start("no-such-room", sipUri="sip:a@x.com").status_code for _ in range(11)]
    assert got == [404] * 10 + [429], "refused-for-other-reasons requests still count"
    r = emu.start("no-such-room", sipUri="sip:a@x.com")
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 5


def test_injected_5xx_repeat_with_the_seed(launcher):
    a = launcher(fault_5xx=0.5, seed=7, rate_limit_scale=0)
    first = statuses(a, 30)
    assert set(first) <= {200, 500, 503}
    assert 5 <= sum(s != 200 for s in first) <= 25
    bad = next(i for i, s in enumerate(first) if s != 200)
    a.reset()
    again = [a.get("/rooms") for _ in range(30)]
    assert [r.status_code for r in again] == first, "a reset restarts the seeded stream"
    assert again[bad].json()["error"] == "server-error"
    b = launcher(fault_5xx=0.5, seed=7, rate_limit_scale=0)
    assert statuses(b, 30) == first, "same seed, same faults in another process"


def test_injected_latency_only_touches_the_api(launcher):
    emu = launcher(fault_latency=0.3, rate_limit_scale=0)
    t = time.monotonic()
    assert emu.get("/rooms").status_code == 200
    assert time.monotonic() - t >= 0.3
    t = time.monotonic()
    emu.emu("rooms")
    assert time.monotonic() - t < 0.3


def test_lost_response_still_places_the_call(launcher):
    emu = launcher(fault_lost_response=1.0, **FAST)
    room = emu.dial_room()
    r = emu.start(room, sipUri="sip:a@x.com", userId="retry-me")
    assert r.status_code == 504 and r.json()["error"] == "server-error"
    [leg] = emu.emu("legs", room=room)
    assert leg["userId"] == "retry-me"
    emu.wait_leg(leg["id"], lambda leg: leg["state"] == "answered")
    assert emu.event_types(room) == ["meeting.started", "dialout.connected", "dialout.answered"]


def _hook(emu, sink, **flags) -> None:
    r = emu.post("/webhooks", {"url": sink.url, **flags})
    assert r.status_code == 200, "verification pings are never faulted"


def _call(emu) -> list[str]:
    room = emu.dial_room()
    sid = emu.start_ok(room, sipUri="sip:a@x.com")
    emu.wait_leg(sid, lambda leg: leg["state"] == "answered")
    emu.post(f"/rooms/{room}/dialOut/stop", {"sessionId": sid})
    return [e["id"] for e in emu.events(room)]


def test_duplicated_deliveries(launcher, sink):
    emu = launcher(fault_duplicate=1.0, **FAST)
    _hook(emu, sink)
    ids = _call(emu)
    wait_until(lambda: len(sink.events()) >= 10)
    assert [r.json["id"] for r in sink.events()] == [i for i in ids for _ in (0, 1)]
    results = [d["result"] for d in emu.emu("deliveries", kind="event")]
    assert results == ["ok", "duplicate"] * 5


def test_dropped_deliveries(launcher, sink):
    emu = launcher(fault_drop=1.0, **FAST)
    _hook(emu, sink)
    _call(emu)
    rows = wait_until(lambda: (d := emu.emu("deliveries", kind="event")) and len(d) >= 5 and d)
    assert {d["result"] for d in rows} == {"dropped"}
    assert sink.events() == []


def test_reordered_deliveries(launcher, sink):
    emu = launcher(fault_reorder=1.0, **FAST)
    _hook(emu, sink)
    a, b, c, d, e = _call(emu)
    wait_until(lambda: len(sink.events()) >= 5)
    # Each held event goes out right after the next one; the last goes out when the hold expires.
    assert [r.json["id"] for r in sink.events()] == [b, a, d, c, e]


def test_config_file_and_flag_precedence(tmp_path):
    cfg = tmp_path / "standin.yaml"
    cfg.write_text("ring-timeout: 7\nsession_limit: 3\ndomain_name: fromfile\nseed: 11\n")
    emu = launch(config=cfg, session_limit=4, rate_limit_scale=0)
    try:
        settings = emu.emu("state")["config"]
        assert (settings["ring_timeout"], settings["session_limit"]) == (7.0, 4)
        assert (settings["domain_name"], settings["seed"]) == ("fromfile", 11)
        assert emu.make_room("named")["url"] == "https://fromfile.daily.co/named"
    finally:
        assert stop(emu) == 0


def test_bad_settings_fail_fast():
    cmd = [sys.executable, "-m", "daily_sip.standin", "--port", "0", "--fault-drop", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    assert done.returncode != 0 and not done.stdout.startswith("http")
    assert "fault_drop" in done.stderr


def test_dev_key_url_line_and_clean_exit():
    proc = subprocess.Popen(
        [sys.executable, "-m", "daily_sip.standin", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        r = httpx.get(
            f"{url}/rooms", headers={"Authorization": "Bearer daily-standin-dev-key"}, trust_env=False
        )
        assert r.status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    emu = launch(rate_limit_scale=0)
    assert stop(emu) == 0, "SIGTERM ends the stand-in with status 0"


def test_webhook_route_faults_drop_or_hold_back_one_event_type(launcher, sink):
    emu = launcher(**FAST)
    _hook(emu, sink)
    assert emu.emu_post(
        "faults", {"route": "WEBHOOK dialout.answered", "mode": "drop", "seconds": 60}
    ).is_success
    assert emu.emu_post(
        "faults", {"route": "WEBHOOK dialout.connected", "mode": "delay", "delay": 1.0, "seconds": 60}
    ).is_success
    ids = _call(emu)
    wait_until(lambda: len(sink.events()) >= len(ids) - 1)
    types = [r.json["type"] for r in sink.events()]
    assert "dialout.answered" not in types
    assert types[-1] == "dialout.connected", "held back, and the events after it were not held behind it"
    refused = [
        {"route": "WEBHOOK dialout.answered", "mode": "error", "count": 1},
        {"route": "GET /rooms", "mode": "drop", "count": 1},
    ]
    assert [emu.emu_post("faults", body).status_code for body in refused] == [400, 400]
