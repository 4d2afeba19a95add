"""Contract: every DailyClient operation, against the stand-in's strict checks, sends a body Daily accepts.

The stand-in refuses a body that misses a field Daily's schema requires (Daily's
``{"error": "invalid-request-error", "info": ...}`` shape) and records what each request carried, so
these tests look at what really went over the wire, not at what the models say they would send.
"""

from __future__ import annotations

import inspect

import httpx
import pytest
from prefect import flow

from daily_sip.tasks import sip
from daily_sip.tasks.client import DailyClient
from daily_sip.tasks.credentials import DailyCredentials
from daily_sip.tasks.models import RoomProperties, SipSettings

# The public operations of DailyClient; a new one fails test_every_operation_is_covered until
# it is driven below.
NOT_OPERATIONS = {"request", "aclose", "closed", "api_url"}


def recent(emu) -> list[dict]:
    return emu.introspect("requests")["recent"]


def operations() -> set[str]:
    return {
        name
        for name, value in vars(DailyClient).items()
        if not name.startswith("_") and name not in NOT_OPERATIONS and callable(value)
    }


async def drive_every_operation(daily: DailyClient, emu, poll, name: str, sink_url: str) -> set[str]:
    """Call each operation once; return the names called. Every call must get a 2xx."""
    done: set[str] = set()

    async def call(op: str, *args, **kwargs):
        result = getattr(daily, op)(*args, **kwargs)
        if inspect.isasyncgen(result):
            result = [item async for item in result]
        else:
            result = await result
        done.add(op)
        last = recent(emu)[-1]
        assert 200 <= last["status"] < 300, (op, last)
        return result

    await call(
        "create_room",
        name,
        privacy="public",
        properties={"enable_dialout": True, "dialout_config": {"allow_room_start": True}},
    )
    await call("get_room", name)
    await call("update_room", name, properties={"eject_at_room_exp": True})
    await call("list_rooms", limit=5)
    await call("iter_rooms", page_size=50)
    await call("enable_sip", name, SipSettings())
    await call("disable_sip", name)
    started = await call("start_dial_out", name, {"sipUri": "sip:bridge@pbx.example.com", "userId": "c-1"})
    await poll(lambda: emu.introspect(f"legs/{started.session_id}")["state"] == "answered")
    await call("send_dtmf", name, {"sessionId": started.session_id, "tones": "12#"})
    await call("get_room_presence", name)
    await call("get_presence")
    await call(
        "sip_call_transfer", name, {"sessionId": started.session_id, "toEndPoint": "sip:next@pbx.example.com"}
    )
    # The transferred leg has left the room (Daily removes the SIP user): refer and stop a new one.
    again = await call("start_dial_out", name, {"sipUri": "sip:bridge@pbx.example.com", "userId": "c-2"})
    await poll(lambda: emu.introspect(f"legs/{again.session_id}")["state"] == "answered")
    await call("sip_refer", name, {"sessionId": again.session_id, "toEndPoint": "sip:other@pbx.example.com"})
    last = await call("start_dial_out", name, {"sipUri": "sip:bridge@pbx.example.com", "userId": "c-3"})
    await call("stop_dial_out", name, last.session_id)
    hook = await call("create_webhook", {"url": sink_url, "retryType": "exponential"})
    await call("list_webhooks")
    await call("get_webhook", hook.uuid)
    await call("update_webhook", hook.uuid, {"url": sink_url})
    await call("delete_webhook", hook.uuid)
    await call("delete_room", name)
    return done


async def test_every_operation_is_accepted_by_the_strict_stand_in(fast_emulator, poll, sink):
    emu = fast_emulator()
    async with DailyClient(emu.api_key, emu.base_url) as daily:
        done = await drive_every_operation(daily, emu, poll, "contract-room", sink.url)
    assert done == operations(), f"not driven by the contract test: {operations() - done}"
    sent = recent(emu)
    assert all(200 <= r["status"] < 300 for r in sent), [r for r in sent if r["status"] >= 300]
    sip_bodies = [
        r["body"]["properties"]["sip"]
        for r in sent
        if r["route"] == "POST /rooms/{name}" and "sip" in r["body"]["properties"]
    ]
    # enable_sip with default settings carries Daily's two required fields; disable sends null.
    assert sip_bodies == [{"sip_mode": "dial-in", "display_name": "SIP Participant"}, None]


async def test_stand_in_refuses_a_sip_object_without_required_fields_in_dailys_shape(fast_emulator):
    emu = fast_emulator()
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    async with httpx.AsyncClient(base_url=emu.base_url, headers=headers) as http:
        r = await http.post("/rooms", json={"name": "bare-sip", "properties": {"sip": {}}})
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "invalid-request-error"
    assert "'sip_mode'" in body["info"] and "'display_name'" in body["info"]
    assert emu.introspect("rooms") == []  # nothing was created


@pytest.mark.parametrize("settings", [None, {"num_endpoints": 2}, SipSettings(video=True)])
def test_required_sip_fields_survive_nesting(settings):
    props = RoomProperties(
        sip=SipSettings.model_validate(settings or {}) if not isinstance(settings, SipSettings) else settings
    )
    body = props.to_body()["sip"]
    assert body["sip_mode"] == "dial-in" and body["display_name"] == "SIP Participant"


@pytest.mark.usefixtures("prefect_server")
def test_enable_sip_task_with_defaults_sends_required_fields(fast_emulator, monkeypatch):
    emu = fast_emulator()
    monkeypatch.setenv("DAILY_RATE_LIMIT_SCALE", "0")
    creds = DailyCredentials(api_key=emu.api_key, api_url=emu.base_url)
    httpx.post(f"{emu.base_url}/rooms", json={"name": "task-sip"}, headers=emu.headers()).raise_for_status()

    @flow
    def enable() -> bool:
        return sip.enable_sip("task-sip", credentials=creds).sip_enabled

    assert enable()
    sent = [r for r in recent(emu) if r["route"] == "POST /rooms/{name}"]
    assert sent[-1]["status"] == 200
    assert sent[-1]["body"] == {
        "properties": {"sip": {"sip_mode": "dial-in", "display_name": "SIP Participant"}}
    }
