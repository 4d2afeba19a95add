"""A key Daily could never accept is refused before any request, and no key reaches a log or error."""

from __future__ import annotations

import logging

import pytest
from prefect import flow

from daily_sip.tasks import DailyClient, DailyCredentials, DailyKeyError
from daily_sip.tasks.rooms import acreate_room

MARK = "SECRET-4242-abcdef"
BAD_KEYS = {
    "trailing no-break space": f"sk-{MARK}\u00a0",
    "space inside": f"sk-{MARK} x",
    "trailing newline": f"sk-{MARK}\n",
    "non-ASCII letter": f"sk-{MARK}-ключ",
    "empty": "",
}


@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_bad_key_is_refused_before_any_request_without_echoing_it(key, fast_emulator):
    emu = fast_emulator()
    with pytest.raises(DailyKeyError) as caught:
        DailyClient(key, emu.base_url)
    text = f"{caught.value} {caught.value!r}"
    assert MARK not in text
    assert ("empty" in text) if not key else ("position" in text and "paste the key again" in text)
    with pytest.raises(DailyKeyError):
        DailyCredentials(api_key=key, api_url=emu.base_url).get_client()
    assert emu.introspect("requests")["total"] == 0, "nothing was sent"


def test_a_good_key_still_works(fast_emulator):
    emu = fast_emulator()
    assert DailyClient(emu.api_key, emu.base_url).api_url == emu.base_url


@pytest.mark.usefixtures("prefect_server")
async def test_bad_key_in_a_flow_reaches_no_log_no_state_no_stderr(fast_emulator, caplog, capfd, monkeypatch):
    emu = fast_emulator()
    monkeypatch.setenv("DAILY_RATE_LIMIT_SCALE", "0")
    creds = DailyCredentials(api_key=BAD_KEYS["trailing no-break space"], api_url=emu.base_url)

    @flow
    async def create() -> None:
        await acreate_room(credentials=creds)

    caplog.set_level(logging.DEBUG)
    state = await create(return_state=True)
    assert state.is_failed()
    assert "non-ASCII character (U+00A0)" in state.message or "DailyKeyError" in state.message
    out, err = capfd.readouterr()
    for text in (caplog.text, out, err, state.message, repr(creds), str(creds.model_dump())):
        assert MARK not in text
    assert emu.introspect("requests")["total"] == 0
