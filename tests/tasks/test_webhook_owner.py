"""The domain's one webhook feeding another application is never repointed without a choice."""

from __future__ import annotations

import base64

import pytest
from prefect import flow

from daily_sip.tasks.client import DailyClient
from daily_sip.tasks.credentials import DailyCredentials
from daily_sip.tasks.webhooks import CAMPAIGN_EVENT_TYPES, WebhookOwnedElsewhere, aensure_webhook
from tests.standin.support import Sink

OURS = base64.b64encode(b"owner-suite-our-secret").decode()
THEIRS = base64.b64encode(b"owner-suite-the-users-app-secret").decode()
THEIR_TYPES = ["recording.ready-to-download", "meeting.ended"]


@pytest.fixture
def sinks():
    made = [Sink(), Sink(), Sink()]
    yield made
    for sink in made:
        sink.close()


@pytest.fixture(autouse=True)
def no_pacing(monkeypatch):
    monkeypatch.setenv("DAILY_RATE_LIMIT_SCALE", "0")


async def test_a_webhook_of_another_application_is_refused_then_taken_over_only_when_asked(
    prefect_server, fast_emulator, sinks
):
    their_app, receiver, moved_receiver = sinks
    emu = fast_emulator()
    creds = DailyCredentials(api_key=emu.api_key, api_url=emu.base_url, webhook_secret=OURS)
    async with DailyClient(emu.api_key, emu.base_url) as daily:
        theirs = await daily.create_webhook(
            {"url": their_app.url + "?token=abc", "hmac": THEIRS, "eventTypes": THEIR_TYPES}
        )

        @flow
        async def ensure(url: str, take_over: bool = False):
            return await aensure_webhook(url, credentials=creds, take_over=take_over)

        with pytest.raises(WebhookOwnedElsewhere) as refused:
            await ensure(receiver.url)
        text = str(refused.value)
        assert f"points at {their_app.url}," in text and "--take-over-webhook" in text
        assert "--relay-to-previous" in text and "nothing was changed" in text
        assert THEIRS not in text and OURS not in text and "token=abc" not in text
        unchanged = await daily.get_webhook(theirs.uuid)
        assert unchanged.url == their_app.url + "?token=abc" and unchanged.hmac.get_secret_value() == THEIRS
        assert receiver.pings() == []

        taken = await ensure(receiver.url, take_over=True)
        assert taken.uuid == theirs.uuid and taken.url == receiver.url
        assert taken.hmac.get_secret_value() == OURS
        assert set(THEIR_TYPES) | set(CAMPAIGN_EVENT_TYPES) <= set(taken.event_types)

        # Signed with our secret, it is ours: a receiver that moved is followed without asking.
        moved = await ensure(moved_receiver.url)
        assert moved.url == moved_receiver.url and len(moved_receiver.pings()) == 1
