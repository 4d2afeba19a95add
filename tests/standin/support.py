"""Helpers for the stand-in's tests: a client, a process launcher, a webhook sink, polling.

The session-wide `emulator` (tests/conftest.py) is shared with other suites, so tests
here never reset it: they use fresh room names and filter introspection by room.
Tests that need webhooks, limits or faults run a stand-in process of their own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

API_KEY = "emu-test-key-42"


def wait_until(fn: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll `fn` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    value = fn()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        time.sleep(interval)
        value = fn()
    return value


def room_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass
class Emu:
    """A stand-in process plus an httpx client bound to it."""

    base_url: str
    api_key: str
    proc: subprocess.Popen | None = None
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=10,
            trust_env=False,
        )

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.client.post(path, json=body if body is not None else {}, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.delete(path, **kw)

    def emu(self, path: str, **params: Any) -> Any:
        r = httpx.get(f"{self.root}/_emulator/{path}", params=params, timeout=10, trust_env=False)
        r.raise_for_status()
        return r.json()

    def emu_post(self, path: str, body: Any = None) -> httpx.Response:
        return httpx.post(f"{self.root}/_emulator/{path}", json=body or {}, timeout=10, trust_env=False)

    def events(self, room: str) -> list[dict[str, Any]]:
        return self.emu("events", room=room)

    def event_types(self, room: str) -> list[str]:
        return [e["type"] for e in self.events(room)]

    def leg(self, leg_id: str) -> dict[str, Any]:
        return self.emu(f"legs/{leg_id}")

    def reset(self) -> None:
        self.emu_post("reset").raise_for_status()

    def make_room(self, name: str | None = None, **props: Any) -> dict[str, Any]:
        r = self.post("/rooms", {"name": name or room_name(), "properties": props})
        assert r.status_code == 200, r.text
        return r.json()

    def dial_room(self, **extra: Any) -> str:
        """A room where REST dial-out may start the meeting."""
        props = {"enable_dialout": True, "dialout_config": {"allow_room_start": True}, **extra}
        return self.make_room(**props)["name"]

    def start(self, room: str, **body: Any) -> httpx.Response:
        return self.post(f"/rooms/{room}/dialOut/start", body)

    def start_ok(self, room: str, **body: Any) -> str:
        r = self.start(room, **body)
        assert r.status_code == 200, r.text
        assert r.json()["ok"] is True
        return r.json()["sessionId"]

    def wait_leg(self, leg_id: str, pred: Callable[[dict[str, Any]], bool], timeout: float = 5) -> dict:
        return wait_until(lambda: (lambda leg: leg if pred(leg) else None)(self.leg(leg_id)), timeout)

    def close(self) -> None:
        self.client.close()


# The stand-in's defaults are Daily's documented behaviour: presence 15 s behind, and an answered
# dial-out alone in its room hung up at once (`max_idle_timeout_sec` 0). Tests that are not about
# these dial into rooms nobody else joins and read presence at once, so they turn both off;
# a test about them passes its own values.
TEST_BEHAVIOUR = {"presence_lag": 0, "enforce_idle_default": False}


def _flag_args(flags: dict[str, Any]) -> list[str]:
    args: list[str] = []
    for key, value in flags.items():
        opt = "--" + key.replace("_", "-")
        if value is True:
            args.append(opt)
        elif value is False:
            args.append("--no-" + key.replace("_", "-"))
        elif value is not None:
            args += [opt, str(value)]
    return args


def launch(api_key: str = API_KEY, **flags: Any) -> Emu:
    """Start `python -m daily_sip.standin` on a free port and wait for its URL line."""
    cmd = [sys.executable, "-m", "daily_sip.standin", "--host", "127.0.0.1", "--port", "0"]
    cmd += ["--api-key", api_key, *_flag_args({**TEST_BEHAVIOUR, **flags})]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    line = proc.stdout.readline().strip()
    if not line.startswith("http://"):
        proc.kill()
        raise RuntimeError(f"stand-in did not start: {line!r} {proc.stderr.read()[-2000:]}")
    return Emu(base_url=line, api_key=api_key, proc=proc)


def stop(emu: Emu) -> int | None:
    emu.close()
    proc = emu.proc
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


FAST = {
    # Exact event sequences below leave out participant.*; test_emu_backend covers those.
    "participant_events": False,
    "rate_limit_scale": 0,
    "ring_timeout": 1.0,
    "hangup_after": 0.5,
    "connect_delay": 0.05,
    "answer_delay": 0.05,
}


# ---------------------------------------------------------------------------
# webhook sink
# ---------------------------------------------------------------------------


@dataclass
class Received:
    """One request the sink got."""

    path: str
    headers: dict[str, str]
    raw: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


class Sink:
    """A real HTTP server on 127.0.0.1 that records POSTs and answers as told.

    `status` is the answer code; `delay` seconds are slept before answering;
    `script` (a list of codes) overrides `status` for the first requests.
    """

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.status = 200
        self.delay = 0.0
        self.script: list[int] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with sink._lock:
                    sink.requests.append(
                        Received(
                            path=self.path,
                            headers={k.lower(): v for k, v in self.headers.items()},
                            raw=raw,
                            at=time.monotonic(),
                        )
                    )
                    code = sink.script.pop(0) if sink.script else sink.status
                    delay = sink.delay
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the stand-in gave up waiting; that is the point of the test

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def events(self) -> list[Received]:
        """Received deliveries, without verification pings."""
        with self._lock:
            return [r for r in self.requests if r.json != {"test": "test"}]

    def pings(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.json == {"test": "test"}]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
