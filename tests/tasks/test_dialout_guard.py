"""Dial-out start and stop stay right where Daily is vague: presence lags, 404 wording varies."""

from __future__ import annotations

import pytest
from prefect import flow

from daily_sip.tasks.credentials import DailyCredentials
from daily_sip.tasks.dialout import astart_dial_out, astop_dial_out
from daily_sip.tasks.errors import DailyNotFoundError
from daily_sip.tasks.rooms import acreate_room

DIAL_PROPS = {"enable_dialout": True, "dialout_config": {"allow_room_start": True}}


@pytest.fixture(autouse=True)
def no_pacing(monkeypatch, prefect_server):
    monkeypatch.setenv("DAILY_RATE_LIMIT_SCALE", "0")


def creds_for(emu) -> DailyCredentials:
    return DailyCredentials(api_key=emu.api_key, api_url=emu.base_url)


async def start_with_lost_answer(emu, room: str, settle: float):
    creds = creds_for(emu)

    @flow
    async def dial():
        await acreate_room(room, DIAL_PROPS, credentials=creds)
        return await astart_dial_out(
            room,
            {"sipUri": "sip:bridge@pbx.example.com", "userId": "g-1"},
            credentials=creds,
            presence_settle_seconds=settle,
        )

    return await dial(return_state=True)


async def test_lost_start_answer_under_presence_lag_dials_once(fast_emulator):
    emu = fast_emulator(fault_lost_response=1.0, presence_lag=2)
    state = await start_with_lost_answer(emu, "guard-lag", settle=6)
    started = await state.result()
    assert started.recovered
    legs = emu.introspect("legs", room="guard-lag")
    assert [leg["id"] for leg in legs] == [started.session_id], "no second leg for the lost start"


async def test_without_waiting_out_the_lag_the_guard_would_dial_again(fast_emulator):
    """The control: reading presence once, right after the lost answer, misses the leg."""
    emu = fast_emulator(fault_lost_response=1.0, presence_lag=2)
    await start_with_lost_answer(emu, "guard-nolag", settle=0)
    assert len(emu.introspect("legs", room="guard-nolag")) > 1


async def test_stop_of_a_leg_that_is_gone_is_not_an_error_but_an_unknown_room_is(fast_emulator, poll):
    emu = fast_emulator()
    creds = creds_for(emu)

    @flow
    async def stops():
        await acreate_room("stop-room", DIAL_PROPS, credentials=creds)
        leg = await astart_dial_out("stop-room", {"sipUri": "sip:busy@pbx.example.com"}, credentials=creds)
        await poll(lambda: emu.introspect(f"legs/{leg.session_id}")["state"] == "failed")
        # The room hosts no call any more: Daily's 404 then says so, in words we do not read.
        gone = await astop_dial_out("stop-room", leg.session_id, credentials=creds)
        try:
            await astop_dial_out("no-such-room", leg.session_id, credentials=creds)
        except DailyNotFoundError as exc:
            return gone, exc
        return gone, None

    gone, unknown_room = await stops()
    assert gone.already_stopped
    assert isinstance(unknown_room, DailyNotFoundError)
