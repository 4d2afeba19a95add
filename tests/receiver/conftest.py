from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.receiver.helpers import ReceiverProcess, launch_receiver, new_secret


def pytest_configure(config: pytest.Config) -> None:
    # tests/conftest.py is expected to declare `pytest_plugins = ["tests._prefect_server"]`;
    # registering it here as well is a no-op then, and keeps these tests runnable before that.
    config.pluginmanager.import_plugin("tests._prefect_server")


@pytest.fixture(scope="session")
def webhook_secret() -> str:
    return new_secret()


@pytest.fixture(scope="session")
def receiver_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("receiver")


@pytest.fixture(scope="session")
def live_receiver(prefect_server, webhook_secret: str, receiver_tmp: Path) -> Iterator[ReceiverProcess]:
    """`python -m daily_sip.receiver` against the real Prefect server, signed with webhook_secret."""
    rec = launch_receiver(receiver_tmp, api_url=prefect_server.api_url, secret=webhook_secret)
    yield rec
    rec.stop()


@pytest.fixture
def start_receiver(prefect_server, receiver_tmp: Path) -> Iterator:
    """Factory for extra receiver processes (default: real Prefect server); stopped after."""
    started: list[ReceiverProcess] = []

    def _start(
        *, secret: str | None, api_url: str | None = None, args: tuple[str, ...] = ()
    ) -> ReceiverProcess:
        rec = launch_receiver(
            receiver_tmp, api_url=api_url or prefect_server.api_url, secret=secret, args=args
        )
        started.append(rec)
        return rec

    yield _start
    for rec in started:
        rec.stop()
