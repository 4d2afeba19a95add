"""Shared fixtures: real processes on 127.0.0.1 only.

`start_emulator(**flags)` launches the offline Daily stand-in as its own process
(`python -m daily_sip.standin ...`), waits for the base URL it prints on its first
stdout line, and stops it at teardown. Flags map to its CLI options
(`ring_timeout=0.5` -> `--ring-timeout 0.5`; `True` -> bare flag).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

pytest_plugins = ["tests._prefect_server"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from tests.live import skip_live_unless_enabled  # `pytest -m live`: real Daily only when asked

    skip_live_unless_enabled(items)


TEST_API_KEY = "test-key-0123456789"


@dataclass
class EmulatorProcess:
    base_url: str  # e.g. http://127.0.0.1:PORT/v1
    api_key: str
    proc: subprocess.Popen

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")

    def introspect(self, path: str = "state", **params) -> dict:
        """GET /_emulator/<path> (state, rooms, legs, deliveries, requests, ...)."""
        r = httpx.get(f"{self.root}/_emulator/{path}", params=params, timeout=10)
        r.raise_for_status()
        return r.json()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


# The stand-in's defaults are Daily's documented behaviour: presence 15 s behind, and an answered
# dial-out alone in its room hung up at once (`max_idle_timeout_sec` 0). Tests that are not about
# these dial into rooms nobody else joins and read presence at once, so they turn both off;
# a test about them passes its own values.
TEST_BEHAVIOUR = {"presence_lag": 0, "enforce_idle_default": False}


def _flag_args(flags: dict) -> list[str]:
    args: list[str] = []
    for key, value in flags.items():
        opt = "--" + key.replace("_", "-")
        if value is True:
            args.append(opt)
        elif value is False:
            args.append("--no-" + key.replace("_", "-"))
        elif value is None:
            continue
        else:
            args += [opt, str(value)]
    return args


def launch_emulator(api_key: str = TEST_API_KEY, **flags) -> EmulatorProcess:
    cmd = [
        sys.executable,
        "-m",
        "daily_sip.standin",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--api-key",
        api_key,
        *_flag_args({**TEST_BEHAVIOUR, **flags}),
    ]
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
    return EmulatorProcess(base_url=line, api_key=api_key, proc=proc)


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def start_emulator() -> Iterator:
    """Factory: start_emulator(**flags) -> EmulatorProcess; all stopped at teardown."""
    started: list[EmulatorProcess] = []

    def _start(**flags) -> EmulatorProcess:
        emu = launch_emulator(**flags)
        started.append(emu)
        return emu

    yield _start
    for emu in started:
        stop_process(emu.proc)


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorProcess]:
    """One fast stand-in for the whole session: rate limits off, short timers.

    Tests that need limits or faults start their own with `start_emulator`.
    """
    emu = launch_emulator(
        rate_limit_scale=0,
        ring_timeout=1.0,
        hangup_after=0.5,
        participant_events=False,
        connect_delay=0.05,
        answer_delay=0.05,
    )
    yield emu
    stop_process(emu.proc)
