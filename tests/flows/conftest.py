"""A campaign stack per test module: stand-in and receiver processes on the session Prefect server."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from daily_sip.local_stack import new_webhook_secret
from tests.conftest import EmulatorProcess, launch_emulator, stop_process
from tests.receiver.helpers import launch_receiver

FAST = {
    "rate_limit_scale": 0,
    "connect_delay": 0.05,
    "answer_delay": 0.1,
    "ring_timeout": 1.5,
    "hangup_after": 0.5,
}


@dataclass
class CampaignStack:
    emulator: EmulatorProcess
    webhook_url: str
    receiver: subprocess.Popen

    def rooms(self) -> list[dict]:
        return self.emulator.introspect("rooms")

    def legs(self) -> list[dict]:
        return self.emulator.introspect("legs")

    def requests_total(self) -> int:
        return self.emulator.introspect("requests")["total"]


def start_stack(prefect_api_url: str, **emulator_flags) -> CampaignStack:
    secret = new_webhook_secret()
    emu = launch_emulator(**{**FAST, **emulator_flags})
    receiver = launch_receiver(
        Path(tempfile.mkdtemp(prefix="campaign-receiver-")), api_url=prefect_api_url, secret=secret
    )
    os.environ.update(
        DAILY_API_KEY=emu.api_key,
        DAILY_API_URL=emu.base_url,
        DAILY_WEBHOOK_SECRET=secret,
        DAILY_RATE_LIMIT_SCALE="0",
    )
    return CampaignStack(emu, receiver.url, receiver.proc)


def stop_stack(stack: CampaignStack) -> None:
    stop_process(stack.receiver)
    stop_process(stack.emulator.proc)


@pytest.fixture(scope="module")
def stack(prefect_server) -> Iterator[CampaignStack]:
    s = start_stack(prefect_server.api_url)
    yield s
    stop_stack(s)
