"""Bad bytes get a 4xx from the receiver, never a 500, and an aborted upload costs one log line.

The signature is checked over the raw bytes first (unchanged); only a validly signed body is
parsed, and it must be strict JSON. None of this needs a Prefect server: nothing is emitted.
"""

from __future__ import annotations

import socket
import time

import pytest

from tests.receiver.helpers import ReceiverProcess, launch_receiver, new_secret, signed

SECRET = new_secret()

ENVELOPE_HEAD = b'{"version":"1.0.0","type":"dialout.answered","id":"bad-bytes-1","event_ts":1,"payload":'
BAD_SIGNED_BODIES = {
    "deep": ENVELOPE_HEAD + b"[" * 5000 + b"]" * 5000 + b"}",
    "deep-but-parseable": ENVELOPE_HEAD + b'{"x":' + b"[" * 600 + b"]" * 600 + b"}}",
    "huge-int": ENVELOPE_HEAD + b'{"n":' + b"9" * 5000 + b"}}",
    "nan": ENVELOPE_HEAD + b'{"room":"r","session_id":"s","n":NaN}}',
    "infinity": ENVELOPE_HEAD + b'{"room":"r","session_id":"s","n":-Infinity}}',
    "not-utf8": ENVELOPE_HEAD + b'{"room":"\xff"}}',
}


@pytest.fixture(scope="module")
def dead_api_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/api"


@pytest.fixture(scope="module")
def rec(tmp_path_factory, dead_api_url):
    proc = launch_receiver(tmp_path_factory.mktemp("bad-bytes"), api_url=dead_api_url, secret=SECRET)
    yield proc
    proc.stop()


@pytest.mark.parametrize("name", list(BAD_SIGNED_BODIES))
def test_validly_signed_bad_json_is_a_400(rec: ReceiverProcess, name: str):
    body = BAD_SIGNED_BODIES[name]
    r = rec.post(body, signed(SECRET, body))
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert r.json()["ok"] is False
    assert rec.health()["ok"] is True
    assert "Traceback" not in rec.output()


def test_unsigned_bad_json_is_still_a_401(rec: ReceiverProcess):
    body = BAD_SIGNED_BODIES["nan"]
    assert rec.post(body, {"Content-Type": "application/json"}).status_code == 401


def _abort_upload(url: str, sent: bytes, announced: int) -> None:
    host, port = url.removeprefix("http://").split("/", 1)[0].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(
            b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {announced}\r\n\r\n".encode()
            + sent
        )
        time.sleep(0.1)


def test_client_disconnecting_mid_body_is_one_log_line(tmp_path, dead_api_url):
    rec = launch_receiver(tmp_path, api_url=dead_api_url, secret=SECRET)
    try:
        rec.health()  # startup is logged by now
        time.sleep(0.3)
        log = rec.stderr_path
        before = len(log.read_text().splitlines())
        for _ in range(3):
            _abort_upload(rec.url, b'{"version":"1.0.0","type":"dialout.ans', 5000)
        deadline = time.monotonic() + 10
        while rec.health()["stats"]["aborted"] < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # let the log flush
        assert rec.health()["stats"]["aborted"] == 3
        new_lines = [line for line in log.read_text().splitlines()[before:] if line.strip()]
        aborted = [line for line in new_lines if "disconnected before sending the whole body" in line]
        assert len(aborted) == 3, new_lines
        assert "Traceback" not in rec.output()
        noise = [line for line in new_lines if line not in aborted and "/healthz" not in line]
        assert noise == [], noise
        # still healthy: a good signed ping is verified and answered
        ping = b'{"test":"test"}'
        assert rec.post(ping, signed(SECRET, ping)).status_code == 200
    finally:
        rec.stop()
