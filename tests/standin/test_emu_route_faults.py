"""Route faults (`/_emulator/faults`): one route failing for a window, answers lost after the effect."""

from __future__ import annotations

import time

import httpx

from .support import FAST


def test_error_window_fails_only_that_route_then_ends(launcher):
    emu = launcher(**FAST)
    r = emu.emu_post("faults", {"route": "DELETE /rooms/{name}", "mode": "error", "seconds": 1.0})
    assert r.status_code == 200 and r.json()["active"]
    room = emu.dial_room()
    assert emu.delete(f"/rooms/{room}").status_code == 500
    assert emu.get(f"/rooms/{room}").status_code == 200, "other routes are untouched"
    time.sleep(1.1)
    assert emu.delete(f"/rooms/{room}").status_code == 200


def test_lost_mode_takes_effect_and_answers_504(launcher):
    emu = launcher(**FAST)
    emu.emu_post("faults", {"route": "POST /rooms", "mode": "lost", "count": 1})
    r = emu.post("/rooms", {"name": "made-anyway"})
    assert r.status_code == 504 and r.json()["error"] == "server-error"
    assert emu.get("/rooms/made-anyway").status_code == 200, "the room exists although the answer was lost"
    assert emu.post("/rooms", {"name": "second"}).status_code == 200, "count=1: only the first"


def test_bad_fault_is_refused_and_delete_disarms(launcher):
    emu = launcher(**FAST)
    assert emu.emu_post("faults", {"route": "GET /rooms", "mode": "explode", "count": 1}).status_code == 400
    assert emu.emu_post("faults", {"route": "GET /rooms"}).status_code == 400
    emu.emu_post("faults", {"route": "*", "mode": "error", "seconds": 60})
    assert emu.get("/rooms").status_code == 500
    httpx.delete(f"{emu.root}/_emulator/faults", timeout=10, trust_env=False).raise_for_status()
    assert emu.get("/rooms").status_code == 200
