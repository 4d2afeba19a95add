"""The Prefect tasks inside real flows, on the session Prefect server, against stand-in processes.

Pacing is off (``DAILY_RATE_LIMIT_SCALE=0``) unless a test is about pacing.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.logging.handlers import APILogHandler
from pydantic import ValidationError

from daily_sip.tasks.client import DailyClient
from daily_sip.tasks.credentials import DailyCredentials
from daily_sip.tasks.dialout import asend_dtmf, astart_dial_out, astop_dial_out
from daily_sip.tasks.errors import DailyNotFoundError, DailyRequestError
from daily_sip.tasks.presence import aget_presence, aget_room_presence
from daily_sip.tasks.rooms import acreate_room, adelete_room, aget_room, alist_rooms, aupdate_room
from daily_sip.tasks.sip import adisable_sip, aenable_sip
from daily_sip.tasks.transfers import asip_call_transfer, asip_refer
from daily_sip.tasks.webhooks import (
    acreate_webhook,
    adelete_webhook,
    aensure_webhook,
    aget_webhook,
    alist_webhooks,
    aupdate_webhook,
)
from tests.conftest import EmulatorProcess, launch_emulator, stop_process

WEBHOOK_SECRET = base64.b64encode(b"tasks-suite-webhook-secret").decode()
TARGET = "sip:bridge-9@pbx.example.com"
DIAL_PROPS = {"enable_dialout": True, "dialout_config": {"allow_room_start": True}}


@pytest.fixture(autouse=True)
def no_pacing(monkeypatch):
    monkeypatch.setenv("DAILY_RATE_LIMIT_SCALE", "0")


@pytest.fixture(scope="module", autouse=True)
async def flush_run_logs(prefect_server):
    """Send the flows' logs while the server is up; left for interpreter exit they retry for a minute."""
    yield
    await APILogHandler.aflush()


@pytest.fixture(scope="module")
def module_emu() -> Iterator[EmulatorProcess]:
    """A stand-in for this module only (fast timers, rate limits off)."""
    emu = launch_emulator(
        rate_limit_scale=0,
        connect_delay=0.05,
        answer_delay=0.05,
        ring_timeout=1.5,
        hangup_after=0.5,
        webhook_timeout=1,
        webhook_retry_base=0.05,
    )
    yield emu
    stop_process(emu.proc)


def creds_for(emu: EmulatorProcess) -> DailyCredentials:
    return DailyCredentials(api_key=emu.api_key, api_url=emu.base_url, webhook_secret=WEBHOOK_SECRET)


@pytest.fixture
def creds(prefect_server, module_emu) -> DailyCredentials:
    return creds_for(module_emu)


def route_count(emu: EmulatorProcess, route: str, status: str | None = None) -> int:
    counts = emu.introspect("requests")["by_route"].get(route, {})
    return counts.get(status, 0) if status else sum(counts.values())


async def task_run_count(state) -> int:
    """run_count of the task run behind ``state`` as the Prefect server recorded it (written async)."""
    task_run_id = state.state_details.task_run_id
    deadline = time.monotonic() + 10
    async with get_client() as prefect:
        while True:
            run = await prefect.read_task_run(task_run_id)
            if run.state is not None and run.state.is_final():
                return run.run_count
            if time.monotonic() > deadline:
                raise AssertionError(f"task run {task_run_id} not final on the server: {run.state}")
            await asyncio.sleep(0.1)


# -- one happy path per task -----------------------------------------------------------------------


async def test_room_and_sip_tasks(creds, module_emu, fresh_name):
    name = fresh_name("task-room")

    @flow
    async def rooms_flow():
        created = await acreate_room(name, {"enable_dialout": True}, credentials=creds)
        got = await aget_room(name, credentials=creds)
        updated = await aupdate_room(name, {"exp": 4_000_000_000}, privacy="private", credentials=creds)
        sip_on = await aenable_sip(
            name, {"num_endpoints": 2}, credentials=creds, dialout_config={"allow_room_start": True}
        )
        sip_off = await adisable_sip(name, credentials=creds)
        listed = await alist_rooms(page_size=2, credentials=creds)
        deleted = await adelete_room(name, credentials=creds)
        again = await adelete_room(name, credentials=creds)
        return created, got, updated, sip_on, sip_off, listed, deleted, again

    created, got, updated, sip_on, sip_off, listed, deleted, again = await rooms_flow()
    assert created.name == name and created.config.enable_dialout is True
    assert got.id == created.id
    assert updated.privacy == "private" and updated.config.exp == 4_000_000_000
    endpoints = sip_on.config.sip_uri.all_endpoints
    assert len(set(endpoints)) == 2 and sip_on.config.dialout_config == {"allow_room_start": True}
    assert not sip_off.sip_enabled
    live = [r["name"] for r in module_emu.introspect("rooms")] + [name]
    assert sorted(r.name for r in listed) == sorted(live)  # every page followed, nothing twice
    assert deleted.deleted and not deleted.already_gone
    assert again.already_gone
    assert name not in {r["name"] for r in module_emu.introspect("rooms")}


# The id of a number bought on Daily (a UUID), as `callerId` wants it.
CALLER_NUMBER_ID = "34b0eb2b-6f0a-4e57-9b6c-1c2f6c1d2e3f"


async def test_dial_out_transfer_and_presence_tasks(creds, module_emu, fresh_name, poll):
    name = fresh_name("task-dial")

    @flow
    async def dial_flow():
        await acreate_room(name, DIAL_PROPS, credentials=creds)
        leg = await astart_dial_out(name, {"sipUri": TARGET, "userId": "task-leg-1"}, credentials=creds)
        in_room = await aget_room_presence(name, user_id="task-leg-1", credentials=creds)
        everywhere = await aget_presence(credentials=creds)
        refer_leg = await astart_dial_out(name, {"sipUri": TARGET}, credentials=creds)
        stop_leg = await astart_dial_out(name, {"sipUri": TARGET}, credentials=creds)
        for started in (leg, refer_leg, stop_leg):
            await poll(lambda s=started: module_emu.introspect(f"legs/{s.session_id}")["state"] == "answered")
        dtmf = await asend_dtmf(name, leg.session_id, "12*#", credentials=creds)
        transfer = await asip_call_transfer(
            name,
            leg.session_id,
            "+14155550100",
            credentials=creds,
            caller_id=CALLER_NUMBER_ID,
            extension="1234#",
            wait_before_extension_dial_sec=2,
        )
        refer = await asip_refer(name, refer_leg.session_id, "sip:desk@pbx.example.com", credentials=creds)
        stopped = await astop_dial_out(name, stop_leg.session_id, credentials=creds)
        return leg, in_room, everywhere, (dtmf, transfer, refer, stopped), (refer_leg, stop_leg)

    leg, in_room, everywhere, acks, (refer_leg, stop_leg) = await dial_flow()
    assert [p.id for p in in_room.data] == [leg.session_id]
    assert [p.user_id for p in everywhere[name]] == ["task-leg-1"]
    assert all(ack.ok for ack in acks)
    seen = module_emu.introspect(f"legs/{leg.session_id}")
    assert seen["userId"] == "task-leg-1"
    assert [d["tones"] for d in seen["dtmf"]] == ["12*#"]
    # The task passes Daily's documented transfer fields; the transferred leg leaves the room.
    [transfer] = seen["transfers"]
    assert (transfer["callerId"], transfer["extension"], transfer["waitBeforeExtensionDialSec"]) == (
        CALLER_NUMBER_ID,
        "1234#",
        2,
    )
    assert (seen["state"], seen["end_reason"]) == ("stopped", "call-transfer")
    referred = module_emu.introspect(f"legs/{refer_leg.session_id}")
    assert [t["kind"] for t in referred["transfers"]] == ["sipRefer"] and referred[
        "end_reason"
    ] == "sip-refer"
    assert module_emu.introspect(f"legs/{stop_leg.session_id}")["end_reason"] == "api-stop"


async def test_webhook_tasks(prefect_server, fast_emulator, sink):
    emu = fast_emulator()
    creds = creds_for(emu)

    @flow
    async def webhook_flow():
        hook = await acreate_webhook({"url": sink.url, "hmac": WEBHOOK_SECRET}, credentials=creds)
        listed = await alist_webhooks(credentials=creds)
        got = await aget_webhook(hook.uuid, credentials=creds)
        updated = await aupdate_webhook(
            hook.uuid, {"url": sink.url, "retryType": "exponential"}, credentials=creds
        )
        first = await adelete_webhook(hook.uuid, credentials=creds)
        second = await adelete_webhook(hook.uuid, credentials=creds)
        return hook, listed, got, updated, first, second

    hook, listed, got, updated, first, second = await webhook_flow()
    assert hook.state == "ACTIVE" and hook.url == sink.url
    assert [h.uuid for h in listed] == [hook.uuid] and got.uuid == hook.uuid
    assert updated.retry_type == "exponential"
    assert (first, second) == (True, False)
    async with DailyClient(emu.api_key, emu.base_url) as daily:
        assert await daily.list_webhooks() == []
    assert len(sink.pings()) == 2  # create and update were each verified


def signed_with(request, secret: str) -> bool:
    message = request.headers["x-webhook-timestamp"].encode() + b"." + request.raw
    expected = base64.b64encode(hmac.new(base64.b64decode(secret), message, hashlib.sha256).digest())
    return hmac.compare_digest(expected.decode(), request.headers["x-webhook-signature"])


async def test_campaigns_ensuring_the_webhook_at_once_all_get_it(prefect_server, fast_emulator, sink):
    """Top of the hour: several campaigns find no webhook and create it at the same moment."""
    emu = fast_emulator(webhook_timeout=5)  # four verification pings at once on a busy machine
    creds = creds_for(emu)

    @flow
    async def four_at_once():
        return await asyncio.gather(*(aensure_webhook(sink.url, credentials=creds) for _ in range(4)))

    hooks = await four_at_once()
    assert len({h.uuid for h in hooks}) == 1  # one webhook, and no campaign failed over it
    assert route_count(emu, "POST /webhooks") >= 1


async def test_ensure_webhook_creates_leaves_alone_and_revives(prefect_server, fast_emulator, sink, poll):
    emu = fast_emulator()
    creds = creds_for(emu)

    @flow
    async def ensure_flow():
        return await aensure_webhook(sink.url, retry_type="circuit-breaker", credentials=creds)

    created = await ensure_flow()
    assert created.url == sink.url and created.state == "ACTIVE"
    assert created.hmac.get_secret_value() == WEBHOOK_SECRET  # the credentials' secret by default
    assert "dialout.answered" in created.event_types
    (ping,) = sink.pings()
    assert signed_with(ping, WEBHOOK_SECRET)

    same = await ensure_flow()
    assert same.uuid == created.uuid and same.updated_at == created.updated_at
    assert len(sink.pings()) == 1
    assert route_count(emu, "POST /webhooks/{uuid}") == 0

    # Three failed deliveries trip the circuit breaker: FAILED, nothing more is sent.
    sink.status = 500
    async with DailyClient(emu.api_key, emu.base_url) as daily:
        room = await daily.create_room(properties=DIAL_PROPS)
        await daily.start_dial_out(room.name, {"sipUri": TARGET})
        await poll(lambda: len(emu.introspect("deliveries", result="failed")) >= 3)
        hook = await daily.get_webhook(created.uuid)
        assert hook.failed and hook.failed_count == 3

    sink.status = 200
    revived = await ensure_flow()
    assert revived.uuid == created.uuid
    assert revived.state == "ACTIVE" and not revived.failed and revived.failed_count == 0
    assert len(sink.pings()) == 2
    async with DailyClient(emu.api_key, emu.base_url) as daily:
        assert (await daily.get_webhook(created.uuid)).state == "ACTIVE"


# -- retries ---------------------------------------------------------------------------------------


async def test_5xx_is_retried_until_the_task_succeeds(prefect_server, fast_emulator, fresh_name):
    emu = fast_emulator(fault_5xx=0.5, seed=11)  # with this seed the first two requests fail
    creds = creds_for(emu)
    name = fresh_name("retry")

    @flow
    async def retry_flow():
        return await acreate_room(name, credentials=creds, return_state=True)

    state = await retry_flow()
    room = await state.aresult()
    assert room.name == name
    failures = route_count(emu, "POST /rooms", "500") + route_count(emu, "POST /rooms", "503")
    assert failures >= 1 and route_count(emu, "POST /rooms", "200") == 1
    assert await task_run_count(state) == failures + 1
    assert [r["name"] for r in emu.introspect("rooms")] == [name]  # created once


async def run_failing_task(call) -> tuple[BaseException, int]:
    """Run ``call(return_state=True)`` in a flow; (its exception, run_count the server recorded)."""

    @flow
    async def one_task():
        state = await call(return_state=True)
        assert state.is_failed()
        return state, await state.aresult(raise_on_failure=False)

    state, exc = await one_task()
    return exc, await task_run_count(state)


async def test_4xx_and_invalid_input_fail_after_one_request(creds, module_emu, fresh_name):
    missing, taken = fresh_name("missing"), fresh_name("taken")
    async with DailyClient(module_emu.api_key, module_emu.base_url) as daily:
        await daily.create_room(taken)

    before_get = route_count(module_emu, "GET /rooms/{name}", "404")
    exc, runs = await run_failing_task(lambda **kw: aget_room(missing, credentials=creds, **kw))
    assert isinstance(exc, DailyNotFoundError) and runs == 1
    assert route_count(module_emu, "GET /rooms/{name}", "404") - before_get == 1

    before_create = route_count(module_emu, "POST /rooms", "400")
    exc, runs = await run_failing_task(lambda **kw: acreate_room(taken, credentials=creds, **kw))
    assert isinstance(exc, DailyRequestError) and exc.status == 400 and runs == 1
    assert route_count(module_emu, "POST /rooms", "400") - before_create == 1

    # Refused by our own model before anything is sent: no request at all, and no retry.
    before_dial = route_count(module_emu, "POST /rooms/{name}/dialOut/start")
    exc, runs = await run_failing_task(
        lambda **kw: astart_dial_out(taken, {"sipUri": "bridge@pbx.example.com"}, credentials=creds, **kw)
    )
    assert isinstance(exc, ValidationError) and "sipUri" in str(exc) and runs == 1
    assert route_count(module_emu, "POST /rooms/{name}/dialOut/start") == before_dial


async def test_429_is_retried_after_retry_after(prefect_server, fast_emulator):
    # One request per 5 s for every class; Retry-After tells how long the window still holds.
    emu = fast_emulator(rate_limit_scale=0.01, retry_after=True)
    creds = creds_for(emu)

    @flow
    async def presence_flow():
        async with DailyClient(emu.api_key, emu.base_url) as daily:
            await daily.get_presence()  # uses up the window
        return await aget_presence(credentials=creds, return_state=True)

    state = await presence_flow()
    assert state.is_completed()
    assert emu.introspect("requests")["by_route"]["GET /presence"] == {"200": 2, "429": 1}
    assert await task_run_count(state) == 1  # waited out inside the call, not a failed try


# -- pacing ----------------------------------------------------------------------------------------


async def test_concurrent_dial_outs_are_paced_below_dailys_limit(prefect_server, start_emulator, monkeypatch):
    """Without a shared pacer (DAILY_PACER_URL unset) one process still keeps Daily's window."""
    monkeypatch.setenv("DAILY_RATE_LIMIT_SCALE", "1")
    monkeypatch.delenv("DAILY_PACER_URL", raising=False)
    emu = start_emulator(rate_limit_scale=1, session_limit=10, connect_delay=0.05, answer_delay=0.05)
    creds = creds_for(emu)

    @flow
    async def burst_flow():
        room = await acreate_room(properties=DIAL_PROPS, credentials=creds)
        legs = await asyncio.gather(
            *(
                astart_dial_out(room.name, {"sipUri": f"sip:bridge-{i}@pbx.example.com"}, credentials=creds)
                for i in range(8)
            )
        )
        return room.name, legs

    room, legs = await burst_flow()
    assert len({leg.session_id for leg in legs}) == 8
    requests = emu.introspect("requests")
    assert requests["rate_limited"] == 0
    assert requests["by_route"]["POST /rooms/{name}/dialOut/start"] == {"200": 8}
    # Daily allows 5 per 5 s: the last three had to wait for the window.
    started = sorted(datetime.fromisoformat(leg["created_at"]) for leg in emu.introspect("legs", room=room))
    assert (started[5] - started[0]).total_seconds() >= 4.9  # (ms rounding of created_at)


# -- lost responses --------------------------------------------------------------------------------


async def test_lost_dial_out_response_returns_the_existing_leg(prefect_server, fast_emulator, fresh_name):
    emu = fast_emulator(fault_lost_response=1.0)
    creds = creds_for(emu)
    user_id = f"lost-{uuid.uuid4().hex[:8]}"

    @flow
    async def lost_flow():
        room = await acreate_room(properties=DIAL_PROPS, credentials=creds)
        return await astart_dial_out(room.name, {"sipUri": TARGET, "userId": user_id}, credentials=creds)

    leg = await lost_flow()
    assert leg.recovered is True  # found in presence by its userId instead of dialing again
    (only,) = emu.introspect("legs", userId=user_id)
    assert only["id"] == leg.session_id
    assert route_count(emu, "POST /rooms/{name}/dialOut/start") == 1  # answered 504 once, not redialed


# -- pagination beyond Daily's page cap ------------------------------------------------------------


async def test_list_rooms_with_a_page_size_above_dailys_cap_returns_every_room(prefect_server, fast_emulator):
    emu = fast_emulator()
    creds = creds_for(emu)
    async with DailyClient(emu.api_key, emu.base_url) as daily:
        for i in range(101):
            await daily.create_room(f"many-{i:03d}")

    @flow
    async def list_flow():
        return await alist_rooms(page_size=150, credentials=creds)

    rooms = await list_flow()
    assert sorted(r.name for r in rooms) == [f"many-{i:03d}" for i in range(101)]
    assert route_count(emu, "GET /rooms", "200") == 2  # pages of 100 and 1
