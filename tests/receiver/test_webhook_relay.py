"""Coexisting with a webhook already in use: refuse to take it without a choice; relay when told to.

Real processes only: the stand-in plays Daily and delivers webhooks for real, a small HTTP server
(`user_app.py`) plays the user's own application the domain's webhook fed before, the receiver
runs as ``python -m daily_sip.receiver``, ``daily-sip setup`` as the CLI.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.receiver.helpers import launch_receiver, new_secret

USER_TYPES = ["dialout.connected", "dialout.answered", "dialout.stopped"]
DIAL_PROPS = {"enable_dialout": True, "dialout_config": {"allow_room_start": True}}
# Daily's `exponential` retry: 5 attempts; base 1 s keeps a dead receiver's deliveries for ~30 s.
STANDIN = {
    "rate_limit_scale": 0,
    "connect_delay": 0.05,
    "answer_delay": 0.05,
    "hangup_after": 0.3,
    "participant_events": False,
    "webhook_timeout": 2,
    "webhook_retry_base": 1,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UserApp:
    """The user's application: `user_app.py` on a fixed port, restartable."""

    def __init__(self, tmp: Path, secret: str) -> None:
        self.port = free_port()
        self.log = tmp / "user-app.jsonl"
        self.secret = secret
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> None:
        script = Path(__file__).with_name("user_app.py")
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(self.port), str(self.log)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "USER_APP_SECRET": self.secret},
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        assert self.url.startswith("http://"), self.url

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def records(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


@pytest.fixture
def user_app(tmp_path: Path):
    app = UserApp(tmp_path, new_secret())
    app.start()
    yield app
    app.stop()


def daily_sip(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "daily_sip.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def the_webhook(emu) -> dict:
    (hook,) = httpx.get(f"{emu.base_url}/webhooks", headers=emu.headers(), timeout=10).json()
    return hook


def dial(emu, outcomes: list[str]) -> None:
    for outcome in outcomes:
        room = f"relay-{uuid.uuid4().hex[:8]}"
        r = httpx.post(
            f"{emu.base_url}/rooms", json={"name": room, "properties": DIAL_PROPS}, headers=emu.headers()
        )
        r.raise_for_status()
        r = httpx.post(
            f"{emu.base_url}/rooms/{room}/dialOut/start",
            json={"sipUri": f"sip:{outcome}-{room}@pbx.example.com"},
            headers=emu.headers(),
        )
        r.raise_for_status()


def wait_until(check, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {within:g} s: {what}")


def delivered_ok(emu, url: str) -> list[dict]:
    rows = emu.introspect("deliveries", kind="event", result="ok")
    return [row for row in rows if row["url"] == url]


def test_a_webhook_in_use_is_relayed_to_its_application_across_a_kill_9(
    prefect_server, start_emulator, user_app: UserApp, tmp_path: Path
):
    emu = start_emulator(**STANDIN)
    created = httpx.post(
        f"{emu.base_url}/webhooks",
        json={
            "url": user_app.url,
            "hmac": user_app.secret,
            "eventTypes": USER_TYPES,
            "retryType": "exponential",
        },
        headers=emu.headers(),
        timeout=15,
    )
    created.raise_for_status()

    block = f"relay-{uuid.uuid4().hex[:8]}"
    receiver_port = free_port()
    receiver_url = f"http://127.0.0.1:{receiver_port}/webhook"
    ours = new_secret()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAILY_", "PREFECT_"))}
    env.update(
        PREFECT_API_URL=prefect_server.api_url,
        DAILY_API_KEY=emu.api_key,
        DAILY_API_URL=emu.base_url,
        DAILY_WEBHOOK_SECRET=ours,
    )
    setup = ["setup", "--block-name", block, "--work-pool", block, "--webhook-url", receiver_url]

    # Without a choice: one line, nothing saved, the webhook untouched.
    refused = daily_sip(*setup, env=env)
    assert refused.returncode == 2, refused.stderr
    # (the pacer's own warning line aside: it is not about the webhook)
    lines = [x for x in refused.stderr.strip().splitlines() if "DAILY_PACER_URL" not in x]
    assert len(lines) == 1, refused.stderr
    line = lines[0]
    assert f"points at {user_app.url}" in line and "--take-over-webhook" in line and "Nothing saved" in line
    assert (
        ours not in refused.stderr + refused.stdout and user_app.secret not in refused.stderr + refused.stdout
    )
    assert the_webhook(emu)["url"] == user_app.url
    blocks = httpx.post(
        f"{prefect_server.api_url}/block_documents/filter",
        json={"block_documents": {"name": {"any_": [block]}}},
        timeout=10,
    ).json()
    assert blocks == []

    # A campaign told to use the receiver stops the same way, before any room exists.
    campaign = tmp_path / "one.yaml"
    campaign.write_text("name: relay-test\ntargets:\n  - sip_uri: sip:hangup-1@pbx.example.com\n")
    run = daily_sip("run", str(campaign), "--webhook-url", receiver_url, env=env)
    assert run.returncode == 2, run.stderr
    assert [x for x in run.stderr.splitlines() if "points at" in x] == [
        x for x in run.stderr.splitlines() if "WARNING" not in x
    ]
    assert f"points at {user_app.url}" in run.stderr
    assert emu.introspect("rooms") == [] and the_webhook(emu)["url"] == user_app.url

    # Relay chosen but no receiver relaying yet: the target is saved, nothing repointed.
    first = daily_sip(*setup, "--take-over-webhook", "--relay-to-previous", env=env)
    assert first.returncode == 0, first.stderr
    assert "NOT repointed yet" in first.stdout and f"--relay-block {block}-webhook-relay" in first.stdout
    assert the_webhook(emu)["url"] == user_app.url

    spool = tmp_path / "spool"
    args = (
        "--port",
        str(receiver_port),
        "--spool-dir",
        str(spool),
        "--relay-block",
        f"{block}-webhook-relay",
    )
    receiver = launch_receiver(tmp_path, api_url=prefect_server.api_url, secret=ours, args=args)
    try:
        done = daily_sip(*setup, "--take-over-webhook", "--relay-to-previous", env=env)
        assert done.returncode == 0, done.stderr
        assert f"now points at {receiver_url}" in done.stdout and "keeps getting its events" in done.stdout
        assert ours not in done.stdout and user_app.secret not in done.stdout
        hook = the_webhook(emu)
        assert hook["url"] == receiver_url and set(USER_TYPES) < set(hook["eventTypes"])

        again = daily_sip(*setup, "--take-over-webhook", "--relay-to-previous", env=env)  # idempotent
        assert again.returncode == 0 and "nothing taken over" in again.stdout, again.stdout + again.stderr
        assert the_webhook(emu)["url"] == receiver_url

        # Phase 1: everything flows. A busy bridge's dialout.error is not a type the app asked for.
        dial(emu, ["hangup", "hangup", "busy"])
        wait_until(lambda: len(delivered_ok(emu, receiver_url)) >= 7, 30, "phase 1 delivered to the receiver")
        wait_until(lambda: receiver.health()["relay"]["relayed"] >= 6, 30, "phase 1 relayed")

        # Phase 2: the application is down; deliveries wait in the relay journal. Then kill -9.
        user_app.stop()
        dial(emu, ["hangup", "hangup"])
        wait_until(lambda: receiver.health()["relay"]["pending"] >= 6, 30, "phase 2 queued for the relay")
        receiver.stop(signal.SIGKILL)

        # Phase 3: Daily delivers into a dead receiver (and retries); both come back.
        dial(emu, ["hangup"])
        user_app.start()
        receiver = launch_receiver(tmp_path, api_url=prefect_server.api_url, secret=ours, args=args)
        assert receiver.health()["relay"]["recovered"] >= 6

        def relayed_all() -> bool:
            ok = delivered_ok(emu, receiver_url)
            wanted = {d["event_id"] for d in ok if d["event_type"] in USER_TYPES}
            return len(wanted) >= 15 and wanted <= {r["id"] for r in user_app.records()}

        try:
            wait_until(relayed_all, 60, "every delivery of the app's types relayed")
        except AssertionError:
            ok = delivered_ok(emu, receiver_url)
            wanted = [(d["event_id"], d["event_type"]) for d in ok if d["event_type"] in USER_TYPES]
            raise AssertionError(
                f"{len(wanted)} wanted, app has {len({r['id'] for r in user_app.records()})}; "
                f"health {receiver.health()}; all deliveries "
                f"{[(d['event_type'], d['result'], d['url'][-8:]) for d in emu.introspect('deliveries')]}; "
                f"{receiver.output()[-3000:]}"
            ) from None
    finally:
        receiver.stop()

    ok = sorted(delivered_ok(emu, receiver_url), key=lambda d: d["ts"])
    expected = list(dict.fromkeys(d["event_id"] for d in ok if d["event_type"] in USER_TYPES))
    got = [r for r in user_app.records() if r["type"] != "ping"]
    assert all(r["valid"] for r in got)  # every relayed delivery carries the app's own signature
    first_seen = list(dict.fromkeys(r["id"] for r in got))
    assert first_seen == expected  # every one, in Daily's order
    assert not {d["event_id"] for d in ok if d["event_type"] == "dialout.error"} & set(first_seen)
    assert len(got) - len(first_seen) <= 1  # at least once: at most the head in flight at the kill
