"""A deployed run with a wrong key or a dead URL fails at once, with the cause in its state message."""

from __future__ import annotations

from daily_sip.flows.campaign.model import Campaign
from daily_sip.flows.dial_campaign import dial_campaign
from daily_sip.local_stack import free_port

CAMPAIGN = Campaign(name="preflight", targets=[{"sip_uri": "sip:bridge@preflight.example.com"}])


async def test_wrong_key_fails_the_run_before_anything_is_provisioned(prefect_server, emulator, monkeypatch):
    monkeypatch.setenv("DAILY_API_KEY", "not-the-key")
    monkeypatch.setenv("DAILY_API_URL", emulator.base_url)
    monkeypatch.setenv("DAILY_RATE_LIMIT_SCALE", "0")
    rooms_before = len(emulator.introspect("rooms"))
    state = await dial_campaign(campaign=CAMPAIGN, return_state=True)
    assert state.is_failed()
    assert "refused the API key" in state.message and "DAILY_API_KEY" in state.message
    assert "not-the-key" not in state.message
    assert len(emulator.introspect("rooms")) == rooms_before


async def test_dead_url_fails_the_run_fast_with_the_url_in_the_message(prefect_server, monkeypatch):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    monkeypatch.setenv("DAILY_API_KEY", "some-key")
    monkeypatch.setenv("DAILY_API_URL", dead)
    monkeypatch.setenv("DAILY_RATE_LIMIT_SCALE", "0")
    state = await dial_campaign(campaign=CAMPAIGN, return_state=True)
    assert state.is_failed()
    assert f"cannot reach the Daily API at {dead}" in state.message
    report = await state.aresult(raise_on_failure=False)
    assert report.cleanup == []  # nothing was created, so nothing to clean up
