"""`--sip-mode real` at the stand-in's own level: dial-outs are SIP calls to SIPp far ends on loopback.

SIPp runs one call per far end and exits 0 only if the whole scenario ran, CANCEL or BYE included.
Needs SIPp (Debian ``sip-tester``) and pjsua2; skipped without them unless CI is set.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .support import Emu, launch, stop, wait_until

SCENARIOS = Path(__file__).parent.parent / "sip" / "scenarios"
MISSING = [
    what
    for what, ok in (
        ("sipp (apt-get install sip-tester)", shutil.which("sipp") is not None),
        ("pjsua2 (pip install 'daily-sip-flows[sip]')", importlib.util.find_spec("pjsua2") is not None),
    )
    if not ok
]
pytestmark = pytest.mark.skipif(
    bool(MISSING) and not os.environ.get("CI"), reason=f"real-SIP tests need {', '.join(MISSING)}"
)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def far_end() -> Iterator[Callable[[str], tuple[str, subprocess.Popen]]]:
    """far_end("busy") -> (its SIP URI, the SIPp process answering one call)."""
    procs: list[subprocess.Popen] = []

    def start(scenario: str) -> tuple[str, subprocess.Popen]:
        port = free_udp_port()
        cmd = ["sipp", "-sf", str(SCENARIOS / f"{scenario}.xml"), "-i", "127.0.0.1", "-p", str(port)]
        proc = subprocess.Popen(
            [*cmd, "-m", "1", "-nostdin"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        procs.append(proc)
        return f"sip:{scenario}@127.0.0.1:{port}", proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


SIP_PORT = free_udp_port()


@pytest.fixture(scope="module")
def real() -> Iterator[Emu]:
    emu = launch(rate_limit_scale=0, ring_timeout=5, sip_mode="real", sip_bind=f"127.0.0.1:{SIP_PORT}")
    yield emu
    stop(emu)


def dialout_events(emu: Emu, room: str) -> list[str]:
    return [t for t in emu.event_types(room) if t.startswith("dialout.")]


def finished(proc: subprocess.Popen) -> int:
    try:
        return proc.wait(5)
    except subprocess.TimeoutExpired:
        pytest.fail("the SIPp far end still has its dialog open")


def test_stop_while_ringing_sends_cancel(real, far_end):
    uri, proc = far_end("noanswer")
    room = real.dial_room()
    sid = real.start_ok(room, sipUri=uri)
    real.wait_leg(sid, lambda leg: leg["state"] == "ringing")
    assert real.post(f"/rooms/{room}/dialOut/stop", {"sessionId": sid}).status_code == 200
    assert finished(proc) == 0  # CANCEL answered 200, INVITE 487, ACK
    leg = real.leg(sid)
    assert (leg["state"], leg["end_reason"], leg["sip_code"]) == ("stopped", "api-stop", 487)
    assert dialout_events(real, room) == ["dialout.connected", "dialout.stopped"]


def test_stop_after_answer_sends_bye(real, far_end):
    uri, proc = far_end("answer")
    room = real.dial_room()
    sid = real.start_ok(room, sipUri=uri)
    real.wait_leg(sid, lambda leg: leg["state"] == "answered")
    assert real.post(f"/rooms/{room}/dialOut/stop", {"sessionId": sid}).status_code == 200
    assert finished(proc) == 0  # the BYE came and was answered
    assert dialout_events(real, room) == ["dialout.connected", "dialout.answered", "dialout.stopped"]


def test_far_end_bye_stops_the_leg(real, far_end):
    uri, proc = far_end("hangup")
    room = real.dial_room()
    sid = real.start_ok(room, sipUri=uri)
    leg = real.wait_leg(sid, lambda leg: leg["state"] == "stopped")
    assert leg["end_reason"] == "remote-hangup"
    assert finished(proc) == 0
    assert dialout_events(real, room) == ["dialout.connected", "dialout.answered", "dialout.stopped"]


def test_busy_far_end_is_an_error_with_its_code(real, far_end):
    uri, proc = far_end("busy")
    room = real.dial_room()
    sid = real.start_ok(room, sipUri=uri)
    leg = real.wait_leg(sid, lambda leg: not leg["active"])
    assert (leg["state"], leg["sip_code"], leg["error_msg"]) == ("failed", 486, "SIP 486 Busy Here")
    assert finished(proc) == 0
    assert dialout_events(real, room) == ["dialout.error"]


def test_a_taken_sip_port_is_one_line_and_exit_2():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        cmd = [sys.executable, "-m", "daily_sip.standin", "--port", "0", "--sip-mode", "real"]
        r = subprocess.run(
            [*cmd, "--sip-bind", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=30
        )
    assert r.returncode == 2 and r.stdout == "", (r.stdout, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.startswith("daily-sip emulator:")]
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0], r.stderr


def caller(user: str, hold_ms: int, log: Path) -> subprocess.Popen:
    """SIPp's built-in UAC: INVITE sip:<user>@the stand-in, ACK the 200, BYE after `hold_ms`."""
    cmd = ["sipp", "-sn", "uac", f"127.0.0.1:{SIP_PORT}", "-s", user, "-i", "127.0.0.1"]
    cmd += ["-p", str(free_udp_port()), "-m", "1", "-d", str(hold_ms), "-nostdin", "-timeout", "10"]
    cmd += ["-trace_msg", "-message_file", str(log)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_sip_client_calling_the_endpoint_joins_and_a_second_one_is_busy(real, tmp_path):
    sip = {"sip_mode": "dial-in", "display_name": "SIP caller", "num_endpoints": 1}
    room = real.make_room(sip={**sip, "dialin_config": {"allow_room_start": True}})
    name, endpoint = room["name"], room["config"]["sip_uri"]["endpoint"]
    user = endpoint.split(":", 1)[1].split("@", 1)[0]
    first = caller(user, hold_ms=2500, log=tmp_path / "first.log")
    try:
        wait_until(lambda: [leg for leg in real.emu("legs") if leg["room"] == name and leg["active"]], 5)
        second = caller(user, hold_ms=100, log=tmp_path / "second.log")
        assert second.wait(10) != 0
        assert "SIP/2.0 486 Busy Here" in (tmp_path / "second.log").read_text()  # one caller per endpoint
        assert first.wait(10) == 0  # answered, ACKed, its BYE answered
    finally:
        if first.poll() is None:
            first.kill()
    events = [t for t in real.event_types(name) if t.startswith("dialin.")]
    assert events == ["dialin.ready", "dialin.connected", "dialin.stopped"]
    (leg,) = [leg for leg in real.emu("legs") if leg["room"] == name]
    assert (leg["kind"], leg["end_reason"], leg["endpoint"]) == ("dialin", "remote-hangup", endpoint)
