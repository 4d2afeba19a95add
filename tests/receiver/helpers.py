"""Helpers for the receiver tests. The signature code here is written independently of
daily_sip.receiver (straight from Daily's webhook docs, https://docs.daily.co/reference/rest-api/webhooks)
so the two can disagree."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx


def new_secret() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def daily_signature(secret_b64: str, timestamp: str, body: bytes) -> str:
    key = base64.b64decode(secret_b64)
    digest = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signed(secret_b64: str, body: bytes, timestamp: str | None = None) -> dict[str, str]:
    ts = timestamp if timestamp is not None else str(int(time.time()))
    return {
        "X-Webhook-Signature": daily_signature(secret_b64, ts, body),
        "X-Webhook-Timestamp": ts,
        "Content-Type": "application/json",
    }


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def envelope(daily_type: str, room: str, *, daily_id: str | None = None, **payload: Any) -> dict[str, Any]:
    now = time.time()
    body = {
        "domain_id": "04b89420-0000-4000-8000-000000000001",
        "room": room,
        "timestamp": str(int(now)),
        **payload,
    }
    return {
        "version": "1.0.0",
        "type": daily_type,
        "id": daily_id or unique(f"2868-{daily_type.replace('.', '-')}"),
        "payload": body,
        "event_ts": round(now, 3),
    }


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# --------------------------------------------------------------------------- Prefect read-back


def read_events(
    api_url: str,
    *,
    resource_id: str | None = None,
    name_prefix: str | None = None,
    since: datetime | None = None,
    event_id: str | None = None,
) -> list[dict[str, Any]]:
    """All persisted events matching the filter (follows next_page)."""
    flt: dict[str, Any] = {
        "occurred": {
            "since": (since or datetime.now(UTC) - timedelta(hours=2)).isoformat(),
            "until": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        },
        "order": "ASC",
    }
    if resource_id:
        flt["resource"] = {"id": [resource_id]}
    if name_prefix:
        flt["event"] = {"prefix": [name_prefix]}
    if event_id:
        flt["id"] = {"id": [event_id]}
    r = httpx.post(f"{api_url}/events/filter", json={"filter": flt, "limit": 50}, timeout=10)
    r.raise_for_status()
    page = r.json()
    events = list(page["events"])
    while page.get("next_page"):
        r = httpx.get(page["next_page"], timeout=10)
        r.raise_for_status()
        page = r.json()
        events += page["events"]
    return events


def wait_for_events(api_url: str, count: int, timeout: float = 30.0, **filters: Any) -> list[dict[str, Any]]:
    """Poll until at least `count` events match (the persister flushes every ~5 s)."""
    deadline = time.monotonic() + timeout
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        events = read_events(api_url, **filters)
        if len(events) >= count:
            return events
        time.sleep(0.25)
    raise AssertionError(f"expected {count} events for {filters}, found {len(events)}")


# --------------------------------------------------------------------------- receiver process


@dataclass
class ReceiverProcess:
    url: str  # http://127.0.0.1:PORT/webhook
    proc: subprocess.Popen
    stdout_path: Path
    stderr_path: Path
    secret: str | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> str:
        return self.url.rsplit("/", 1)[0]

    def health(self) -> dict[str, Any]:
        r = httpx.get(f"{self.root}/healthz", timeout=5)
        r.raise_for_status()
        return r.json()

    def output(self) -> str:
        return (
            self.stdout_path.read_text(errors="replace") + "\n" + self.stderr_path.read_text(errors="replace")
        )

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(self.url, content=body, headers=headers or {}, timeout=30)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def launch_receiver(
    tmp_dir: Path,
    *,
    api_url: str,
    secret: str | None,
    args: tuple[str, ...] = (),
    startup_timeout: float = 60,
) -> ReceiverProcess:
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    stdout_path = tmp_dir / f"receiver-{tag}.out"
    stderr_path = tmp_dir / f"receiver-{tag}.err"
    env = {k: v for k, v in os.environ.items() if k != "DAILY_WEBHOOK_SECRET"}
    env.update(PREFECT_API_URL=api_url, PYTHONUNBUFFERED="1")
    if secret is not None:
        env["DAILY_WEBHOOK_SECRET"] = secret
    cmd = [sys.executable, "-m", "daily_sip.receiver", "--host", "127.0.0.1", "--port", "0", *args]
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
        )
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        text = stdout_path.read_text(errors="replace")
        if "\n" in text:
            first = text.split("\n", 1)[0]
            return ReceiverProcess(
                url=first, proc=proc, stdout_path=stdout_path, stderr_path=stderr_path, secret=secret
            )
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(
        f"receiver did not start (rc={proc.returncode}): {stderr_path.read_text(errors='replace')[-3000:]}"
    )
