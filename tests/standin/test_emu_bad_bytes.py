"""Bad bytes get a 400 in Daily's error shape, and leave the stand-in answering as before.

Whatever the stand-in parses it keeps (the request log behind ``/_emulator/requests``), so a body
that parses into something JSON cannot write back (NaN, Infinity) would break every later
introspection call; it is refused at parse time instead.
"""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from .support import Emu, wait_until

BAD_BODIES = {
    "nan": b'{"name": "r-nan", "properties": {"max_participants": NaN}}',
    "infinity": b'{"name": "r-inf", "properties": {"exp": Infinity}}',
    "minus-infinity": b'{"properties": {"exp": -Infinity}}',
    "overflowing-float": b'{"properties": {"exp": 1e999}}',
    "deep": b'{"properties": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "deep-but-parseable": b'{"properties": {"x": ' + b"[" * 500 + b"]" * 500 + b"}}",
    "huge-int": b'{"properties": {"max_participants": ' + b"9" * 5000 + b"}}",
    "not-utf8": b'{"name": "\xff\xfe"}',
}


def _introspection_still_answers(emu: Emu) -> None:
    for path in ("requests", "state", "faults", "legs", "events"):
        r = httpx.get(f"{emu.root}/_emulator/{path}", timeout=10, trust_env=False)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])


@pytest.fixture(scope="module")
def emu(own_module_emu: Emu) -> Emu:
    return own_module_emu


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_bad_body_is_a_400_and_does_not_poison_introspection(emu: Emu, name: str):
    r = emu.client.post("/rooms", content=BAD_BODIES[name], headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text[:300]
    assert r.json()["error"] == "json-parsing-error"
    assert isinstance(r.json()["info"], str) and len(r.json()["info"]) < 300
    _introspection_still_answers(emu)
    assert emu.post("/rooms", {}).status_code == 200, "the next good request is served"
    recent = emu.emu("requests")["recent"]
    assert any(row["status"] == 400 and row["route"] == "POST /rooms" for row in recent)


@pytest.mark.parametrize("seconds", ["NaN", "Infinity", "-Infinity", "-5", '"60"', "1e999"])
def test_fault_that_could_never_expire_is_refused(emu: Emu, seconds: str):
    body = f'{{"route": "GET /rooms", "mode": "error", "seconds": {seconds}}}'.encode()
    r = httpx.post(f"{emu.root}/_emulator/faults", content=body, timeout=10, trust_env=False)
    assert r.status_code == 400, r.text
    assert set(r.json()) == {"error", "info"}
    assert httpx.get(f"{emu.root}/_emulator/faults", timeout=10, trust_env=False).json() == []
    assert emu.get("/rooms").status_code == 200
    _introspection_still_answers(emu)


@pytest.mark.parametrize(
    "fields",
    [{"status": "500"}, {"status": 500.5}, {"delay": "x"}, {"jitter": [1]}, {"count": 1.5}, {"count": -1}],
)
def test_fault_with_mistyped_numbers_is_a_400(emu: Emu, fields: dict):
    r = emu.emu_post("faults", {"route": "GET /rooms", "mode": "delay", "seconds": 1, **fields})
    assert r.status_code == 400, r.text
    _introspection_still_answers(emu)


def test_client_that_disconnects_mid_body_changes_nothing(emu: Emu):
    before = emu.emu("requests")["total"]
    host, port = emu.root.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(
            b"POST /v1/rooms HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + emu.api_key.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            + b'{"name": "half-'
        )
        time.sleep(0.2)
    wait_until(lambda: emu.get("/rooms").status_code == 200)
    assert emu.get("/rooms/half-").status_code == 404
    assert emu.emu("requests")["total"] == before + 2, "only the two GETs were counted"
    _introspection_still_answers(emu)
