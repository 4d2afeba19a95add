"""A campaign given a webhook URL leaves a webhook that feeds another application alone."""

from __future__ import annotations

import base64

from daily_sip.flows.campaign.model import Campaign
from daily_sip.flows.dial_campaign import dial_campaign
from daily_sip.tasks.client import DailyClient
from tests.standin.support import Sink

from .conftest import start_stack, stop_stack

THEIRS = base64.b64encode(b"flows-suite-the-users-app-secret").decode()


async def test_a_campaign_stops_before_any_room_when_the_webhook_feeds_another_application(prefect_server):
    stack = start_stack(prefect_server.api_url)
    their_app = Sink()
    try:
        emu = stack.emulator
        async with DailyClient(emu.api_key, emu.base_url) as daily:
            await daily.create_webhook(
                {"url": their_app.url, "hmac": THEIRS, "eventTypes": ["meeting.ended"]}
            )
        c = Campaign.model_validate({"name": "t", "targets": [{"sip_uri": "sip:hangup-1@pbx.example.com"}]})

        state = await dial_campaign(campaign=c, webhook_url=stack.webhook_url, return_state=True)
        report = await state.aresult(raise_on_failure=False)

        assert state.is_failed()
        assert f"points at {their_app.url}" in report.error and "--take-over-webhook" in report.error
        assert THEIRS not in report.error
        assert stack.rooms() == [] and stack.legs() == []
        async with DailyClient(emu.api_key, emu.base_url) as daily:
            (hook,) = await daily.list_webhooks()
        assert hook.url == their_app.url and hook.hmac.get_secret_value() == THEIRS
        assert emu.introspect("deliveries", kind="verification")[1:] == []  # no ping to the receiver
    finally:
        their_app.close()
        stop_stack(stack)
