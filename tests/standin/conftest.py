"""Fixtures for the stand-in's tests (helpers live in support.py).

The session-wide `emulator` (tests/conftest.py) is shared with other suites, so tests
here never reset it: they use fresh room names and filter introspection by room.
Tests that need webhooks, limits or faults run a stand-in process of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .support import FAST, Emu, Sink, launch, stop


@pytest.fixture
def shared(emulator) -> Iterator[Emu]:
    """The session-wide stand-in from tests/conftest.py, with our client on it."""
    emu = Emu(base_url=emulator.base_url, api_key=emulator.api_key)
    yield emu
    emu.close()


@pytest.fixture(scope="module")
def own_module_emu() -> Iterator[Emu]:
    """A private stand-in for one test module (fast timers, short webhook timeouts)."""
    emu = launch(**FAST, webhook_timeout=0.5, webhook_retry_base=0.05)
    yield emu
    stop(emu)


@pytest.fixture
def own(own_module_emu: Emu) -> Emu:
    """The module's private stand-in, reset to empty for this test."""
    own_module_emu.reset()
    return own_module_emu


@pytest.fixture
def launcher() -> Iterator[Callable[..., Emu]]:
    """Factory for stand-ins with custom flags; all stopped at teardown."""
    started: list[Emu] = []

    def _launch(**flags: Any) -> Emu:
        emu = launch(**flags)
        started.append(emu)
        return emu

    yield _launch
    for emu in started:
        stop(emu)


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()
