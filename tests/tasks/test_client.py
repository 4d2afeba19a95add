"""DailyClient against the offline stand-in over real HTTP: every operation, its answers and its failures."""

from __future__ import annotations

import re
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from daily_sip.tasks.client import DailyClient
from daily_sip.tasks.errors import (
    DailyAPIError,
    DailyAuthError,
    DailyError,
    DailyForbiddenError,
    DailyNotFoundError,
    DailyRateLimitError,
    DailyRequestError,
    DailyServerError,
    DailyTransportError,
)
from daily_sip.tasks.models import StartDialOut

SECRET_KEY = "sk-never-show-me-7f3a9c"
TARGET = "sip:bridge-7@pbx.example.com"


async def dial_room(client: DailyClient, name: str, **props) -> str:
    """A room where a REST dial-out may start the meeting."""
    room = await client.create_room(
        name, properties={"enable_dialout": True, "dialout_config": {"allow_room_start": True}, **props}
    )
    return room.name


async def answered_leg(client, emulator, poll, name: str, uri: str = TARGET, **body) -> str:
    room = await dial_room(client, name)
    started = await client.start_dial_out(room, {"sipUri": uri, **body})
    await poll(lambda: emulator.introspect(f"legs/{started.session_id}")["state"] == "answered")
    return started.session_id


def assert_permanent(exc: DailyAPIError) -> None:
    assert not exc.transient
    assert not exc.maybe_applied


# -- rooms -----------------------------------------------------------------------------------------


async def test_create_named_room_with_sip_and_dialout_config(client, fresh_name):
    name = fresh_name("named")
    room = await client.create_room(
        name,
        privacy="private",
        properties={
            "enable_dialout": True,
            "dialout_config": {"allow_room_start": True, "max_idle_timeout_sec": 30},
            "sip": {"display_name": "Bridge", "num_endpoints": 2},
        },
    )
    assert room.name == name
    assert room.url.endswith(f"/{name}")
    assert room.privacy == "private"
    assert room.config.enable_dialout is True
    assert room.config.dialout_config == {"allow_room_start": True, "max_idle_timeout_sec": 30}
    assert room.sip_enabled and len(room.config.sip_uri.all_endpoints) == 2
    fetched = await client.get_room(name)
    assert (fetched.id, fetched.name, fetched.config.enable_dialout) == (room.id, name, True)
    assert fetched.config.sip_uri.all_endpoints == room.config.sip_uri.all_endpoints


async def test_create_room_without_name_gets_a_random_valid_one(client):
    first, second = await client.create_room(), await client.create_room()
    assert first.name != second.name
    for room in (first, second):
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,128}", room.name)
        assert (await client.get_room(room.name)).id == room.id
        assert not room.sip_enabled


async def test_create_room_with_a_taken_name_is_a_permanent_request_error(client, fresh_name):
    name = fresh_name("dup")
    await client.create_room(name)
    with pytest.raises(DailyRequestError) as info:
        await client.create_room(name)
    assert info.value.status == 400 and info.value.error == "invalid-request-error"
    assert_permanent(info.value)


async def test_update_room_changes_privacy_and_properties(client, fresh_name):
    name = fresh_name("upd")
    await client.create_room(name)
    updated = await client.update_room(
        name, privacy="private", properties={"enable_dialout": True, "exp": 4_000_000_000}
    )
    assert updated.privacy == "private"
    assert updated.config.enable_dialout is True and updated.config.exp == 4_000_000_000
    again = await client.get_room(name)
    assert again.privacy == "private" and again.config.enable_dialout is True


async def test_get_and_update_of_a_missing_room_are_not_found(client, fresh_name):
    missing = fresh_name("missing")
    with pytest.raises(DailyNotFoundError) as info:
        await client.get_room(missing)
    assert info.value.status == 404 and missing in str(info.value)
    assert_permanent(info.value)
    with pytest.raises(DailyNotFoundError):
        await client.update_room(missing, properties={"enable_dialout": True})


async def test_delete_room_then_deleting_it_again_is_already_gone(client, fresh_name):
    name = fresh_name("del")
    await client.create_room(name)
    deleted = await client.delete_room(name)
    assert deleted.deleted is True and deleted.name == name and deleted.already_gone is False
    with pytest.raises(DailyNotFoundError):
        await client.get_room(name)
    again = await client.delete_room(name)
    assert again.deleted is True and again.already_gone is True and again.name == name
    never = fresh_name("never")
    gone = await client.delete_room(never)
    assert (gone.deleted, gone.already_gone, gone.name) == (True, True, never)


async def test_list_rooms_pages_and_iter_rooms_follows_cursors(fast_emulator):
    emu = fast_emulator()
    async with DailyClient(emu.api_key, emu.base_url) as daily:
        created = [(await daily.create_room(f"page-{i}")).name for i in range(7)]
        newest_first = list(reversed(created))

        first = await daily.list_rooms(limit=3)
        assert first.total_count == 7
        assert [r.name for r in first.data] == newest_first[:3]
        second = await daily.list_rooms(limit=3, starting_after=first.data[-1].id)
        assert [r.name for r in second.data] == newest_first[3:6]
        last = await daily.list_rooms(limit=3, starting_after=second.data[-1].id)
        assert [r.name for r in last.data] == newest_first[6:]
        before = await daily.list_rooms(limit=2, ending_before=last.data[0].id)
        assert [r.name for r in before.data] == newest_first[4:6]

        lists_before = emu.introspect("requests")["by_route"]["GET /rooms"]["200"]
        assert [r.name async for r in daily.iter_rooms(page_size=3)] == newest_first
        assert emu.introspect("requests")["by_route"]["GET /rooms"]["200"] - lists_before == 3

        # A domain whose room count is a multiple of the page size: the empty page ends it.
        await daily.delete_room("page-0")
        assert [r.name async for r in daily.iter_rooms(page_size=3)] == newest_first[:6]


async def test_iter_rooms_with_a_page_size_above_dailys_cap_still_sees_every_room(fast_emulator):
    """Daily answers at most 100 rooms a page; a full page of 100 must not look like the last one."""
    emu = fast_emulator()
    async with DailyClient(emu.api_key, emu.base_url) as daily:
        for i in range(101):
            await daily.create_room(f"many-{i:03d}")
        names = [r.name async for r in daily.iter_rooms(page_size=150)]
    assert sorted(names) == [f"many-{i:03d}" for i in range(101)]


# -- SIP dial-in -----------------------------------------------------------------------------------


async def test_enable_sip_gives_distinct_endpoints_and_disable_removes_them(client, emulator, fresh_name):
    name = fresh_name("sip")
    await client.create_room(name)
    room = await client.enable_sip(name, {"display_name": "Dial-in", "num_endpoints": 3}, enable_dialout=True)
    endpoints = room.config.sip_uri.all_endpoints
    assert len(endpoints) == len(set(endpoints)) == 3
    assert all(e.startswith("sip:") for e in endpoints)
    assert room.config.sip["display_name"] == "Dial-in" and room.config.enable_dialout is True
    assert emulator.introspect("rooms")  # the stand-in agrees: SIP is on with three endpoints
    seen = next(r for r in emulator.introspect("rooms") if r["name"] == name)
    assert seen["sip_enabled"] and sorted(seen["sip_endpoints"]) == sorted(endpoints)

    off = await client.disable_sip(name)
    assert off.config.sip_uri is None and not off.sip_enabled and off.config.sip is None
    assert off.config.enable_dialout is True  # other properties untouched
    assert not (await client.get_room(name)).sip_enabled


# -- dial-out --------------------------------------------------------------------------------------


async def test_dial_out_start_shows_in_presence_and_stop_ends_it(client, emulator, fresh_name, poll):
    room = await dial_room(client, fresh_name("dial"))
    started = await client.start_dial_out(
        room, StartDialOut(sip_uri=TARGET, display_name="Bridge 7", user_id="target-7")
    )
    assert started.ok is True and uuid.UUID(started.session_id)

    presence = await client.get_room_presence(room)
    assert presence.total_count == 1
    (person,) = presence.data
    assert (person.id, person.user_id, person.user_name) == (started.session_id, "target-7", "Bridge 7")
    assert (await client.get_room_presence(room, user_id="someone-else")).data == []

    await poll(lambda: emulator.introspect(f"legs/{started.session_id}")["state"] == "answered")
    stopped = await client.stop_dial_out(room, started.session_id)
    assert stopped.ok is True
    leg = emulator.introspect(f"legs/{started.session_id}")
    assert (leg["state"], leg["end_reason"]) == ("stopped", "api-stop")
    assert (await client.get_room_presence(room)).data == []


async def test_stop_of_an_unknown_session_is_no_dialout_to_stop(client, fresh_name):
    room = await dial_room(client, fresh_name("stop"))
    await client.start_dial_out(room, {"sipUri": TARGET})
    with pytest.raises(DailyNotFoundError) as info:
        await client.stop_dial_out(room, str(uuid.uuid4()))
    assert info.value.info == "No dialout to stop"
    assert_permanent(info.value)


async def test_dial_out_into_an_empty_room_without_allow_room_start_is_not_hosting(client, fresh_name):
    room = (await client.create_room(fresh_name("empty"), properties={"enable_dialout": True})).name
    with pytest.raises(DailyNotFoundError) as info:
        await client.start_dial_out(room, {"sipUri": TARGET})
    assert info.value.status == 404 and info.value.info == "Room is not hosting a call"
    assert_permanent(info.value)


async def test_dial_out_without_enable_dialout_is_a_permanent_refusal(client, emulator, fresh_name):
    room = (await client.create_room(fresh_name("nodial"))).name
    with pytest.raises(DailyForbiddenError) as info:
        await client.start_dial_out(room, {"sipUri": TARGET})
    assert info.value.status == 403 and info.value.error == "forbidden-error"
    assert not isinstance(info.value, DailyAuthError), "not a bad key"
    assert "enable_dialout" in str(info.value) and "accepted the API key" in str(info.value)
    assert_permanent(info.value)
    assert emulator.introspect("legs", room=room) == []


async def test_send_dtmf_to_an_answered_leg_is_recorded(client, emulator, fresh_name, poll):
    session = await answered_leg(client, emulator, poll, fresh_name("dtmf"))
    room = emulator.introspect(f"legs/{session}")["room"]
    ack = await client.send_dtmf(room, {"sessionId": session, "tones": "123#", "digitDurationMs": 100})
    assert ack.ok is True
    (leg,) = [leg for leg in emulator.introspect("legs", room=room) if leg["id"] == session]
    assert [(d["tones"], d["digitDurationMs"]) for d in leg["dtmf"]] == [("123#", 100)]


async def test_send_dtmf_to_a_ringing_or_unknown_leg_fails(client, emulator, fresh_name, poll):
    room = await dial_room(client, fresh_name("ring"))
    ringing = await client.start_dial_out(room, {"sipUri": "sip:noanswer@pbx.example.com"})
    await poll(lambda: emulator.introspect(f"legs/{ringing.session_id}")["state"] == "ringing")
    with pytest.raises(DailyRequestError) as info:
        await client.send_dtmf(room, {"sessionId": ringing.session_id, "tones": "1"})
    assert info.value.status == 400 and "not been answered" in info.value.info
    assert_permanent(info.value)
    with pytest.raises(DailyNotFoundError) as unknown:
        await client.send_dtmf(room, {"sessionId": str(uuid.uuid4()), "tones": "1"})
    assert unknown.value.info == "No session running"
    assert emulator.introspect(f"legs/{ringing.session_id}")["dtmf"] == []


async def test_sip_call_transfer_and_refer_move_the_leg_out_of_the_room(client, emulator, fresh_name, poll):
    session = await answered_leg(client, emulator, poll, fresh_name("xfer"))
    room = emulator.introspect(f"legs/{session}")["room"]
    other = (await client.start_dial_out(room, {"sipUri": TARGET})).session_id
    await poll(lambda: emulator.introspect(f"legs/{other}")["state"] == "answered")
    ack = await client.sip_call_transfer(
        room, {"sessionId": session, "toEndPoint": "sip:ops@pbx.example.com"}
    )
    assert ack.ok is True
    ack = await client.sip_refer(room, {"sessionId": other, "toEndPoint": "+14155550100"})
    assert ack.ok is True
    for sid, kind, to in (
        (session, "sipCallTransfer", "sip:ops@pbx.example.com"),
        (other, "sipRefer", "+14155550100"),
    ):
        leg = emulator.introspect(f"legs/{sid}")
        assert [(t["kind"], t["toEndPoint"]) for t in leg["transfers"]] == [(kind, to)]
        assert not leg["active"], "Daily removes the SIP user from the room"


async def test_transfers_of_an_unknown_session_are_not_found(client, emulator, fresh_name, poll):
    session = await answered_leg(client, emulator, poll, fresh_name("xfer404"))
    room = emulator.introspect(f"legs/{session}")["room"]
    bogus = {"sessionId": str(uuid.uuid4()), "toEndPoint": "sip:ops@pbx.example.com"}
    for call in (client.sip_call_transfer, client.sip_refer):
        with pytest.raises(DailyNotFoundError) as info:
            await call(room, bogus)
        assert info.value.info == "invalid sessionId"
        assert_permanent(info.value)
    assert emulator.introspect(f"legs/{session}")["transfers"] == []


async def test_get_presence_lists_rooms_with_people(client, fresh_name):
    room = await dial_room(client, fresh_name("pres"))
    leg = await client.start_dial_out(room, {"sipUri": TARGET, "userId": "presence-1"})
    everywhere = await client.get_presence()
    assert [(p.id, p.user_id, p.room) for p in everywhere[room]] == [(leg.session_id, "presence-1", room)]
    await client.stop_dial_out(room, leg.session_id)
    assert room not in await client.get_presence()


# -- webhooks --------------------------------------------------------------------------------------


async def test_webhook_lifecycle(fast_emulator, sink):
    emu = fast_emulator()
    async with DailyClient(emu.api_key, emu.base_url) as daily:
        hook = await daily.create_webhook(
            {"url": sink.url, "hmac": "c2VjcmV0LXNlY3JldA==", "eventTypes": ["dialout.answered"]}
        )
        assert hook.url == sink.url and hook.state == "ACTIVE" and not hook.failed
        assert hook.event_types == ["dialout.answered"]
        assert hook.hmac.get_secret_value() == "c2VjcmV0LXNlY3JldA=="
        assert "c2VjcmV0LXNlY3JldA" not in repr(hook)
        assert len(sink.pings()) == 1  # Daily verified the URL before storing it

        assert [h.uuid for h in await daily.list_webhooks()] == [hook.uuid]
        assert (await daily.get_webhook(hook.uuid)).url == sink.url

        updated = await daily.update_webhook(
            hook.uuid, {"url": sink.url, "retryType": "exponential", "eventTypes": ["dialout.stopped"]}
        )
        assert (updated.uuid, updated.retry_type, updated.event_types) == (
            hook.uuid,
            "exponential",
            ["dialout.stopped"],
        )
        assert (await daily.get_webhook(hook.uuid)).retry_type == "exponential"
        assert len(sink.pings()) == 2

        assert await daily.delete_webhook(hook.uuid) is True
        assert await daily.delete_webhook(hook.uuid) is False
        assert await daily.list_webhooks() == []
        with pytest.raises(DailyNotFoundError):
            await daily.get_webhook(hook.uuid)


async def test_webhook_create_with_a_failing_url_names_the_status(fast_emulator, sink):
    emu = fast_emulator()
    sink.status = 500
    async with DailyClient(emu.api_key, emu.base_url) as daily:
        with pytest.raises(DailyRequestError) as info:
            await daily.create_webhook({"url": sink.url})
        assert info.value.status == 400 and "500" in str(info.value)
        assert_permanent(info.value)
        assert await daily.list_webhooks() == []


# -- errors ----------------------------------------------------------------------------------------


async def test_wrong_key_is_a_permanent_auth_error_and_the_key_is_not_shown(emulator):
    async with DailyClient(SECRET_KEY, emulator.base_url) as daily:
        assert SECRET_KEY not in repr(daily)
        with pytest.raises(DailyAuthError) as info:
            await daily.get_presence()
    err = info.value
    assert (err.status, err.error) == (401, "authentication-error")
    assert_permanent(err)
    assert SECRET_KEY not in str(err) and SECRET_KEY not in repr(err)


KEY_WITH_NEWLINE = SECRET_KEY + "\n"  # e.g. read from a file without strip()


@pytest.mark.parametrize("key", ["", KEY_WITH_NEWLINE, SECRET_KEY + " "], ids=["empty", "newline", "space"])
async def test_a_key_that_cannot_be_sent_is_a_quiet_permanent_error(emulator, key):
    """Refused when the client is built, before any request; the error must not echo the key,
    nor invite retries (tests/tasks/test_keys.py has the other malformed keys)."""
    with pytest.raises(DailyError) as info:
        DailyClient(key, emulator.base_url)
    err = info.value
    assert not err.transient
    assert not getattr(err, "maybe_applied", False)
    assert "API key" in str(err)
    if key:
        assert SECRET_KEY not in str(err) and SECRET_KEY not in repr(err)


async def hit_rate_limit(daily: DailyClient, attempts: int = 40) -> DailyRateLimitError:
    for _ in range(attempts):
        try:
            await daily.get_presence()
        except DailyRateLimitError as exc:
            return exc
    raise AssertionError(f"no 429 within {attempts} requests")


async def test_429_is_a_transient_rate_limit_error(start_emulator):
    emu = start_emulator(rate_limit_scale=0.2)  # 20 per 5 s for the default class
    async with DailyClient(emu.api_key, emu.base_url) as daily:
        err = await hit_rate_limit(daily)
    assert (err.status, err.error) == (429, "rate-limit-error")
    assert err.transient and not err.maybe_applied
    assert err.retry_after is None  # Daily sends no Retry-After by default
    assert emu.api_key not in str(err)
    assert emu.introspect("requests")["rate_limited"] == 1


async def test_429_retry_after_is_parsed(start_emulator):
    emu = start_emulator(rate_limit_scale=0.2, retry_after=True)
    async with DailyClient(emu.api_key, emu.base_url) as daily:
        err = await hit_rate_limit(daily)
    assert err.retry_after is not None and 1 <= err.retry_after <= 5


async def test_5xx_is_a_transient_server_error_that_may_have_applied(start_emulator, fresh_name):
    emu = start_emulator(fault_5xx=1.0, seed=1)
    async with DailyClient(emu.api_key, emu.base_url) as daily:
        with pytest.raises(DailyServerError) as info:
            await daily.create_room(fresh_name("five"))
    err = info.value
    assert err.status in (500, 503) and err.error == "server-error"
    assert err.transient and err.maybe_applied
    assert emu.api_key not in str(err)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_connection_refused_is_transient_and_not_applied():
    async with DailyClient(SECRET_KEY, f"http://127.0.0.1:{_closed_port()}/v1") as daily:
        with pytest.raises(DailyTransportError) as info:
            await daily.create_room()
    err = info.value
    assert err.transient and err.maybe_applied is False
    assert (err.method, err.path) == ("POST", "/rooms")
    assert SECRET_KEY not in str(err)


async def test_read_timeout_is_transient_and_may_have_applied(start_emulator):
    emu = start_emulator(fault_latency=2)
    async with DailyClient(emu.api_key, emu.base_url, timeout=0.5) as daily:
        with pytest.raises(DailyTransportError) as info:
            await daily.start_dial_out("any-room", {"sipUri": TARGET})
    err = info.value
    assert err.transient and err.maybe_applied is True
    assert "Timeout" in str(err) and emu.api_key not in str(err)


class _Answer429(BaseHTTPRequestHandler):
    retry_after = "soon"

    def do_GET(self) -> None:
        body = b'{"error": "rate-limit-error", "info": "slow down"}'
        self.send_response(429)
        self.send_header("Retry-After", self.retry_after)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def answer_429():
    """A real HTTP server that answers every GET with 429 and the given ``Retry-After`` value."""
    servers = []

    def _start(value: str) -> str:
        handler = type("Handler", (_Answer429,), {"retry_after": value})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield _start
    for server in servers:
        server.shutdown()
        server.server_close()


async def test_retry_after_as_an_http_date_is_understood(answer_429):
    url = answer_429("Wed, 21 Oct 2015 07:28:00 GMT")  # in the past: no wait
    async with DailyClient("k", url) as daily:
        with pytest.raises(DailyRateLimitError) as info:
            await daily.get_presence()
    assert info.value.retry_after == 0.0


async def test_unparsable_retry_after_still_gives_a_rate_limit_error(answer_429):
    async with DailyClient("k", answer_429("soon")) as daily:
        with pytest.raises(DailyRateLimitError) as info:
            await daily.get_presence()
    assert info.value.retry_after is None
