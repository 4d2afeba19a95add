"""The relay's queue against a real HTTP endpoint: Daily's signature, order, retries, give-up, replay.

The end-to-end run with real processes is test_webhook_relay.py; here the relay's rules one by one,
its sender posting to a real server on 127.0.0.1 (`Sink`), checked with the tests' own signature code.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from pydantic import SecretStr

from daily_sip.receiver import relay as relay_module
from daily_sip.receiver.relay import GIVE_UP_AFTER, Relay, RelayTarget
from tests.receiver.helpers import daily_signature, dumps, envelope, new_secret
from tests.standin.support import Sink


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(relay_module, "RETRY_FIRST_SECONDS", 0.01)


def body(daily_type: str = "recording.ready-to-download") -> tuple[str, str, bytes]:
    doc = envelope(daily_type, "room-1", city="Zürich")
    return doc["id"], daily_type, dumps(doc)


async def run_until_drained(relay: Relay, within: float = 10) -> None:
    sender = asyncio.create_task(relay.run())
    try:
        async with asyncio.timeout(within):
            await relay.drained()
    finally:
        sender.cancel()


def tear(journal: Path) -> None:
    """A last line the crash cut short: it was never acknowledged to Daily."""
    with open(journal, "ab") as out:
        out.write(b'E {"id": "torn-by-the-cra')


def valid(request, secret: str) -> bool:
    ts = request.headers["x-webhook-timestamp"]
    return request.headers["x-webhook-signature"] == daily_signature(secret, ts, request.raw)


async def test_relayed_as_daily_sends_in_order_through_failures_and_refusals(sink, tmp_path: Path):
    secret = new_secret()
    target = RelayTarget(
        sink.url, SecretStr(secret), ["recording.ready-to-download"], SecretStr("dXNlcjpwdw==")
    )
    relay = Relay(tmp_path, target)
    items = [body() for _ in range(3)]
    other = body("dialout.answered")
    # The first is refused for good (dropped after GIVE_UP_AFTER tries), the second meets a 503 twice.
    sink.script = [400] * GIVE_UP_AFTER + [503, 503]
    for item in items:
        assert relay.put(*item)
    assert not relay.put(*other)  # a type the application did not subscribe to
    assert not relay.put(*items[1])  # Daily redelivering an event already queued
    await run_until_drained(relay)
    relay.close()

    ids = [r.json["id"] for r in sink.requests]
    assert ids == [items[0][0]] * GIVE_UP_AFTER + [items[1][0]] * 3 + [items[2][0]]
    assert [r.raw for r in sink.requests[-1:]] == [items[2][2]]  # byte for byte, "Zürich" unescaped
    assert all(valid(r, secret) for r in sink.requests)
    assert all(r.headers["authorization"] == "Basic dXNlcjpwdw==" for r in sink.requests)
    assert relay.stats["relayed"] == 2 and relay.stats["dropped"] == 1 and relay.stats["skipped_types"] == 1
    assert (tmp_path / relay_module.JOURNAL).stat().st_size == 0


async def test_a_journal_left_by_a_crash_is_relayed_after_a_restart(sink, tmp_path: Path):
    secret = new_secret()
    target = RelayTarget(sink.url, SecretStr(secret))
    crashed = Relay(tmp_path, target)
    items = [body(), body("meeting.ended")]
    for item in items:
        crashed.put(*item)
    crashed.close()  # never sent: the process died
    tear(tmp_path / relay_module.JOURNAL)

    again = Relay(tmp_path, target)
    assert again.recovered == 2
    assert not again.put(*items[0])  # Daily redelivers what it never got a 200 for: queued once
    await run_until_drained(again)
    again.close()
    assert [r.json["id"] for r in sink.requests] == [items[0][0], items[1][0]]
    assert all(valid(r, secret) for r in sink.requests)


def test_the_target_never_shows_its_secret_and_refuses_bad_input():
    secret = base64.b64encode(b"the application's secret").decode()
    target = RelayTarget("https://app.example.com/daily?token=t0k", SecretStr(secret))
    assert secret not in repr(target) and "t0k" not in repr(target)
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(target)
    with pytest.raises(ValueError, match="DAILY_RELAY_SECRET"):
        RelayTarget("https://app.example.com/daily", SecretStr("not base64!"))
    with pytest.raises(ValueError, match="http"):
        RelayTarget("ftp://app.example.com/daily", SecretStr(secret))
