"""Two campaigns starting at once on a domain with no webhook yet share the domain's one webhook."""

from __future__ import annotations

import asyncio
import base64

from prefect import flow

from daily_sip.tasks.credentials import DailyCredentials
from daily_sip.tasks.webhooks import aensure_webhook

SECRET = base64.b64encode(b"webhook-race-secret").decode()


def route_count(emu, route: str, status: str) -> int:
    return emu.introspect("requests")["by_route"].get(route, {}).get(status, 0)


async def test_concurrent_first_time_ensures_share_the_one_webhook(prefect_server, fast_emulator, sink):
    emu = fast_emulator()
    creds = DailyCredentials(api_key=emu.api_key, api_url=emu.base_url, webhook_secret=SECRET)

    @flow
    async def two_at_once():
        return await asyncio.gather(*(aensure_webhook(sink.url, credentials=creds) for _ in range(2)))

    first, second = await two_at_once()
    assert first.uuid == second.uuid
    assert second.url == sink.url and not second.failed
    # Both really raced: Daily (the stand-in) refused the second create.
    assert route_count(emu, "POST /webhooks", "400") == 1
    assert len(emu.introspect("state")["webhooks"]) == 1
