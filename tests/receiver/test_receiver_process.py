"""`python -m daily_sip.receiver` as a process: URL line, signals, configuration errors.

None of these needs a Prefect server: the receiver is pointed at a port nobody listens on.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.receiver.helpers import dumps, envelope, launch_receiver, new_secret, signed, unique

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dead_api_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/api"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_prints_url_first_and_exits_0_on_signal(tmp_path, dead_api_url, sig):
    secret = new_secret()
    rec = launch_receiver(tmp_path, api_url=dead_api_url, secret=secret)
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/webhook", rec.url), rec.url
        assert rec.stdout_path.read_text().splitlines()[0] == rec.url
        health = rec.health()
        assert health["ok"] is True and health["secret_configured"] is True
        assert httpx.post(rec.url, content=b'{"test":"test"}', timeout=10).status_code == 200
    finally:
        code = rec.stop(sig)
    assert code == 0, rec.output()[-2000:]
    assert secret not in rec.output()


def test_without_secret_pings_pass_and_events_wait(tmp_path, dead_api_url):
    rec = launch_receiver(tmp_path, api_url=dead_api_url, secret=None)
    try:
        assert rec.health()["secret_configured"] is False
        ping = b'{"test": "test"}'
        assert rec.post(ping).status_code == 200
        assert rec.post(ping, signed(new_secret(), ping)).status_code == 200  # cannot verify
        body = dumps(envelope("dialout.connected", unique("room")))
        r = rec.post(body, signed(new_secret(), body))
        assert r.status_code == 503 and "secret" in r.json()["error"]
        assert rec.health()["stats"]["accepted"] == 0
    finally:
        assert rec.stop() == 0
    assert "no webhook secret" in rec.output()


def _run_cli(tmp_path: Path, env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != "DAILY_WEBHOOK_SECRET"
    }
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), **env_extra)
    return subprocess.run(
        [sys.executable, "-m", "daily_sip.receiver", "--port", "0", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_invalid_secret_exits_2_without_echoing_it(tmp_path, dead_api_url):
    bad = "not*base64*" + os.urandom(6).hex()
    done = _run_cli(tmp_path, {"DAILY_WEBHOOK_SECRET": bad, "PREFECT_API_URL": dead_api_url})
    assert done.returncode == 2
    assert "not valid base64" in done.stderr
    assert done.stdout == ""  # no URL printed: nothing is served
    assert bad not in done.stdout + done.stderr
    assert bad[11:] not in done.stdout + done.stderr


def test_missing_prefect_api_url_exits_2(tmp_path):
    done = _run_cli(tmp_path, {"DAILY_WEBHOOK_SECRET": new_secret()})
    assert done.returncode == 2
    assert "PREFECT_API_URL" in done.stderr
    assert done.stdout == ""


def test_secret_option_and_busy_port(tmp_path, dead_api_url):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        secret = new_secret()
        done = subprocess.run(
            [sys.executable, "-m", "daily_sip.receiver", "--port", str(port), "--secret", secret],
            env={**os.environ, "PREFECT_API_URL": dead_api_url},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert "in use" in done.stderr.lower()
    assert secret not in done.stderr
