"""Fixtures for the client / task / credentials suites: real stand-in processes, a real webhook sink.

The session-wide ``emulator`` (tests/conftest.py) is shared with other suites: tests here use fresh
room names and filter introspection by room or leg id. Anything that needs an empty domain (webhooks,
exact counts), rate limits or faults starts a stand-in of its own with ``start_emulator``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from daily_sip.tasks.client import DailyClient
from tests.standin.support import Sink

# Fast timers for stand-ins started by these suites (rate limits off unless a test says otherwise).
FAST = {
    "rate_limit_scale": 0,
    "connect_delay": 0.05,
    "answer_delay": 0.05,
    "ring_timeout": 1.5,
    "hangup_after": 0.5,
    "webhook_timeout": 1,
    "webhook_retry_base": 0.05,
}


@pytest.fixture
def fast_emulator(start_emulator) -> Callable[..., Any]:
    """``fast_emulator(**flags)``: a private stand-in with FAST timers (flags override them)."""

    def _start(**flags: Any) -> Any:
        return start_emulator(**{**FAST, **flags})

    return _start


@pytest.fixture
def fresh_name() -> Callable[[str], str]:
    def _name(prefix: str = "t") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    return _name


@pytest.fixture
def poll() -> Callable[..., Any]:
    """``await poll(fn, within=5)``: call ``fn`` until it returns something truthy, else fail."""

    async def _poll(fn: Callable[[], Any], within: float = 5.0, interval: float = 0.02) -> Any:
        deadline = time.monotonic() + within
        value = fn()
        while not value:
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {within}s; last value: {value!r}")
            await asyncio.sleep(interval)
            value = fn()
        return value

    return _poll


@pytest.fixture
async def client(emulator) -> AsyncIterator[DailyClient]:
    """Our client on the session stand-in (rate limits off, fast timers)."""
    async with DailyClient(emulator.api_key, emulator.base_url) as daily:
        yield daily


@pytest.fixture
def sink() -> Iterator[Sink]:
    """A real HTTP webhook endpoint on 127.0.0.1 answering 200 (``sink.status`` changes that)."""
    s = Sink()
    yield s
    s.close()
