"""The receiver as a real process (`python -m daily_sip.receiver`) against a real Prefect server.

Every check reads the outcome back from Prefect's own API (`POST /api/events/filter`), i.e. what
was persisted, not what the receiver claims. "Nothing emitted" is shown by sending a valid marker
event to the same room afterwards and waiting until Prefect has persisted it: the room must then
hold the marker only.
"""

from __future__ import annotations

import asyncio
import base64
import os
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from daily_sip.receiver.events import proof_of
from tests.receiver.helpers import (
    daily_signature,
    dumps,
    envelope,
    new_secret,
    read_events,
    signed,
    unique,
    wait_for_events,
)

NAMESPACE = uuid.uuid5(
    uuid.NAMESPACE_URL, "https://docs.daily.co/reference/rest-api/webhooks#daily-sip-flows"
)


def expected_id(daily_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, daily_id))


def room_events(api_url: str, room: str) -> list[dict]:
    return read_events(api_url, resource_id=f"daily.room.{room}")


def send_marker_and_collect(rec, secret: str, api_url: str, room: str) -> list[dict]:
    """Send a valid event to `room`, wait until Prefect persisted it, return the room's events."""
    marker = envelope("dialout.stopped", room)
    marker["payload"]["timestamp"] = f"{time.time():.6f}"
    body = dumps(marker)
    r = rec.post(body, signed(secret, body))
    assert r.status_code == 200, r.text
    wait_for_events(api_url, 1, event_id=expected_id(marker["id"]))
    events = room_events(api_url, room)
    assert expected_id(marker["id"]) in [e["id"] for e in events]
    return [e for e in events if e["id"] != expected_id(marker["id"])]


def test_signed_event_is_emitted_with_the_contract(prefect_server, live_receiver, webhook_secret):
    room = unique("room")
    session_id = str(uuid.uuid4())
    env = envelope(
        "dialout.answered",
        room,
        session_id=session_id,
        user_id="corr-42",
        destination="sip:abc@efg.example.com",
        caller_id="cid-1",
        origin="sip:x@y",
        some_future_field={"a": [1, 2]},
    )
    body = dumps(env)

    headers = signed(webhook_secret, body)
    r = live_receiver.post(body, headers)

    assert r.status_code == 200, r.text
    assert r.json()["event_id"] == expected_id(env["id"])
    [event] = wait_for_events(prefect_server.api_url, 1, resource_id=f"daily.room.{room}")
    assert event["id"] == expected_id(env["id"])
    assert event["event"] == "daily.dialout.answered"
    assert event["resource"] == {
        "prefect.resource.id": f"daily.room.{room}",
        "prefect.resource.name": room,
        "daily.room": room,
        "daily.domain_id": env["payload"]["domain_id"],
    }
    assert event["related"] == [
        {"prefect.resource.id": f"daily.dialout.{session_id}", "prefect.resource.role": "dialout-session"},
        {"prefect.resource.id": "daily.user.corr-42", "prefect.resource.role": "dial-user"},
    ]
    assert event["payload"] == {
        "daily_event_id": env["id"],
        "daily_type": "dialout.answered",
        "version": "1.0.0",
        "event_ts": env["event_ts"],
        "daily": env["payload"],
        # What a consumer needs to verify Daily's signature itself (flows/collect/verify.py).
        "proof": proof_of(headers["X-Webhook-Timestamp"], headers["X-Webhook-Signature"], body),
    }
    occurred = datetime.fromisoformat(event["occurred"].replace("Z", "+00:00"))
    assert occurred == datetime.fromtimestamp(int(env["payload"]["timestamp"]), tz=UTC)


def test_dialin_and_unknown_event_types_are_emitted(prefect_server, live_receiver, webhook_secret):
    room = unique("room")
    dialin = envelope(
        "dialin.connected",
        room,
        session_id="ff1e7130",
        sip_from="sip:+1555@carrier",
        sip_headers={"X-Foo": "bar"},
    )
    unknown = envelope("transcript.brand-new-thing", room, whatever=[1, {"x": None}])
    for env in (dialin, unknown):
        body = dumps(env)
        r = live_receiver.post(body, signed(webhook_secret, body))
        assert r.status_code == 200, r.text

    events = wait_for_events(prefect_server.api_url, 2, resource_id=f"daily.room.{room}")
    by_id = {e["id"]: e for e in events}
    assert set(by_id) == {expected_id(dialin["id"]), expected_id(unknown["id"])}
    got_dialin = by_id[expected_id(dialin["id"])]
    assert got_dialin["event"] == "daily.dialin.connected"
    assert got_dialin["related"] == [
        {"prefect.resource.id": "daily.dialin.ff1e7130", "prefect.resource.role": "dialin-session"}
    ]
    got_unknown = by_id[expected_id(unknown["id"])]
    assert got_unknown["event"] == "daily.transcript.brand-new-thing"
    assert got_unknown["payload"]["daily"] == unknown["payload"]


def test_forged_signatures_get_401_and_emit_nothing(prefect_server, live_receiver, webhook_secret):
    room = unique("room")
    env = envelope("dialout.connected", room, session_id="s-forged")
    body = dumps(env)
    ts = str(int(time.time()))
    good = daily_signature(webhook_secret, ts, body)
    key_hex_sig = base64.b64decode(good).hex()
    attempts = {
        "other secret": {
            "X-Webhook-Signature": daily_signature(new_secret(), ts, body),
            "X-Webhook-Timestamp": ts,
        },
        "tampered body": {
            "X-Webhook-Signature": daily_signature(
                webhook_secret, ts, body.replace(b"s-forged", b"s-FORGED")
            ),
            "X-Webhook-Timestamp": ts,
        },
        "timestamp not covered": {"X-Webhook-Signature": good, "X-Webhook-Timestamp": str(int(ts) - 1)},
        "hex instead of base64": {"X-Webhook-Signature": key_hex_sig, "X-Webhook-Timestamp": ts},
        "garbage": {"X-Webhook-Signature": "AAAA", "X-Webhook-Timestamp": ts},
    }
    before = live_receiver.health()["stats"]["accepted"]
    for name, headers in attempts.items():
        r = live_receiver.post(body, headers)
        assert r.status_code == 401, (name, r.text)
    assert live_receiver.health()["stats"]["accepted"] == before
    assert send_marker_and_collect(live_receiver, webhook_secret, prefect_server.api_url, room) == []


def test_stale_or_future_or_bad_timestamp_gets_401(prefect_server, live_receiver, webhook_secret):
    room = unique("room")
    env = envelope("dialout.connected", room, session_id="s-stale")
    body = dumps(env)
    now = int(time.time())
    for ts in (str(now - 301 - 5), str(now + 301 + 5), str((now - 3600) * 1000), "abc", "nan", ""):
        r = live_receiver.post(
            body,
            {"X-Webhook-Signature": daily_signature(webhook_secret, ts, body), "X-Webhook-Timestamp": ts},
        )
        assert r.status_code == 401, (ts, r.text)
    assert send_marker_and_collect(live_receiver, webhook_secret, prefect_server.api_url, room) == []


def test_millisecond_timestamps_are_accepted(prefect_server, live_receiver, webhook_secret):
    room = unique("room")
    env = envelope("dialout.connected", room, session_id="s-ms")
    body = dumps(env)
    r = live_receiver.post(body, signed(webhook_secret, body, str(int(time.time() * 1000))))
    assert r.status_code == 200, r.text
    wait_for_events(prefect_server.api_url, 1, event_id=expected_id(env["id"]))


def test_missing_headers_get_401(prefect_server, live_receiver, webhook_secret):
    room = unique("room")
    env = envelope("dialout.answered", room, session_id="s-missing")
    body = dumps(env)
    full = signed(webhook_secret, body)
    for headers in (
        {},
        {"X-Webhook-Signature": full["X-Webhook-Signature"]},
        {"X-Webhook-Timestamp": full["X-Webhook-Timestamp"]},
        {"X-Webhook-Signature": "", "X-Webhook-Timestamp": ""},
    ):
        r = live_receiver.post(body, headers)
        assert r.status_code == 401, (headers, r.text)
    assert send_marker_and_collect(live_receiver, webhook_secret, prefect_server.api_url, room) == []


def test_verification_ping_answers_200_and_emits_nothing(prefect_server, live_receiver, webhook_secret):
    since = datetime.now(UTC) - timedelta(milliseconds=1)
    before = live_receiver.health()["stats"]
    for ping in (b'{"test":"test"}', b'{"test": "test"}'):
        assert live_receiver.post(ping).status_code == 200  # unsigned (tolerated)
        assert live_receiver.post(ping, signed(webhook_secret, ping)).status_code == 200
        bad = signed(new_secret(), ping)
        assert live_receiver.post(ping, bad).status_code == 401  # signed but wrong
        stale = signed(webhook_secret, ping, str(int(time.time()) - 3600))
        assert live_receiver.post(ping, stale).status_code == 401
    after = live_receiver.health()["stats"]
    assert after["pings"] == before["pings"] + 4
    assert after["accepted"] == before["accepted"]

    room = unique("room")
    assert send_marker_and_collect(live_receiver, webhook_secret, prefect_server.api_url, room) == []
    # nothing else named daily.* was persisted since the pings either
    names = [e["event"] for e in read_events(prefect_server.api_url, name_prefix="daily.", since=since)]
    assert names == ["daily.dialout.stopped"]


def test_duplicate_deliveries_yield_exactly_one_event(prefect_server, live_receiver, webhook_secret):
    room = unique("room")
    env = envelope("dialout.connected", room, session_id="s-dup")
    body = dumps(env)
    statuses = []
    for delay in (0, 1, 2):  # Daily re-signs each retry with a fresh timestamp
        r = live_receiver.post(body, signed(webhook_secret, body, str(int(time.time()) + delay)))
        statuses.append((r.status_code, r.json().get("duplicate", False)))
    assert statuses == [(200, False), (200, True), (200, True)]

    concurrent = envelope("dialout.answered", room, session_id="s-dup")
    cbody = dumps(concurrent)
    with ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(lambda _: live_receiver.post(cbody, signed(webhook_secret, cbody)), range(8))
        )
    assert [r.status_code for r in responses] == [200] * 8
    assert sum(not r.json().get("duplicate", False) for r in responses) >= 1

    others = send_marker_and_collect(live_receiver, webhook_secret, prefect_server.api_url, room)
    ids = sorted(e["id"] for e in others)
    assert ids == sorted([expected_id(env["id"]), expected_id(concurrent["id"])])


def test_redelivery_to_a_restarted_receiver_collapses_in_prefect(
    prefect_server, live_receiver, start_receiver, webhook_secret
):
    """A fresh receiver has no memory of ids; the stable event id still gives one event."""
    room = unique("room")
    env = envelope("dialout.stopped", room, session_id="s-restart")
    body = dumps(env)
    assert live_receiver.post(body, signed(webhook_secret, body)).status_code == 200
    wait_for_events(prefect_server.api_url, 1, event_id=expected_id(env["id"]))
    fresh = start_receiver(secret=webhook_secret)
    r = fresh.post(body, signed(webhook_secret, body))
    assert r.status_code == 200, r.text
    assert not r.json().get("duplicate")  # emitted again by the fresh receiver...
    others = send_marker_and_collect(fresh, webhook_secret, prefect_server.api_url, room)
    assert [e["id"] for e in others] == [expected_id(env["id"])]  # ...but stored once


def test_prefect_down_gives_503(start_receiver, webhook_secret, unused_port):
    rec = start_receiver(secret=webhook_secret, api_url=f"http://127.0.0.1:{unused_port}/api")
    env = envelope("dialout.answered", unique("room"), session_id="s-down")
    body = dumps(env)
    started = time.perf_counter()
    r = rec.post(body, signed(webhook_secret, body))
    assert r.status_code == 503, r.text
    assert r.headers.get("retry-after")
    assert time.perf_counter() - started < 5
    # not remembered as seen: the retry is attempted again (and fails again)
    assert rec.post(body, signed(webhook_secret, body)).status_code == 503
    assert rec.health()["stats"]["emit_failures"] == 2


class ToggleProxy:
    """A TCP forwarder in front of the Prefect server that can be switched off and on."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.add(up_writer)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._writers.discard(writer)
        self._writers.discard(up_writer)


async def test_outage_then_recovery_delivers_the_retry(prefect_server, start_receiver, webhook_secret):
    """503 while Prefect is unreachable, the id is not marked seen, Daily's retry lands."""
    proxy = ToggleProxy(prefect_server.port)
    await proxy.start()
    rec = await asyncio.to_thread(
        start_receiver, secret=webhook_secret, api_url=f"http://127.0.0.1:{proxy.port}/api"
    )
    room = unique("room")
    first = envelope("dialout.connected", room, session_id="s-outage")
    retried = envelope("dialout.answered", room, session_id="s-outage")
    async with httpx.AsyncClient(timeout=30) as client:

        async def post(env):
            body = dumps(env)
            return await client.post(rec.url, content=body, headers=signed(webhook_secret, body))

        assert (await post(first)).status_code == 200  # keep-alive connection now pooled
        await proxy.stop()
        r = await post(retried)
        assert r.status_code == 503, r.text
        await proxy.start()  # same port
        r = await post(retried)
        assert r.status_code == 200, r.text
        assert not r.json().get("duplicate")
    await proxy.stop()
    events = await asyncio.to_thread(
        wait_for_events, prefect_server.api_url, 2, resource_id=f"daily.room.{room}"
    )
    assert sorted(e["id"] for e in events) == sorted([expected_id(first["id"]), expected_id(retried["id"])])


def test_oversized_body_is_refused(live_receiver, webhook_secret):
    env = envelope("dialout.connected", unique("room"), blob="x" * 1_100_000)
    body = dumps(env)
    r = live_receiver.post(body, signed(webhook_secret, body))
    assert r.status_code == 413


def test_malformed_envelope_is_400(live_receiver, webhook_secret):
    for body in (b"[1,2]", b"not json", dumps({"type": "dialout.connected"})):
        r = live_receiver.post(body, signed(webhook_secret, body))
        assert r.status_code == 400, (body, r.text)


def test_latency_of_signed_posts_including_prefect_write(
    prefect_server, live_receiver, webhook_secret, record_property
):
    n = int(os.environ.get("RECEIVER_LATENCY_POSTS", "200"))
    room = unique("room-latency")
    latencies = []
    with httpx.Client(timeout=30) as client:
        for i in range(n):
            env = envelope("dialout.connected", room, session_id=f"s-{i}")
            body = dumps(env)
            headers = signed(webhook_secret, body)
            t0 = time.perf_counter()
            r = client.post(live_receiver.url, content=body, headers=headers)
            latencies.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p95 = latencies[int(0.95 * (n - 1))] * 1000
    record_property("receiver_p50_ms", round(p50, 2))
    record_property("receiver_p95_ms", round(p95, 2))
    print(
        f"\n[receiver latency] {n} signed posts incl. Prefect write: "
        f"p50={p50:.1f} ms p95={p95:.1f} ms max={latencies[-1] * 1000:.1f} ms"
    )
    # every 200 is in Prefect's database
    events = wait_for_events(prefect_server.api_url, n, timeout=60, resource_id=f"daily.room.{room}")
    assert len(events) == n
    assert p95 < 1000, f"p95 {p95:.0f} ms"


def test_secret_never_appears_in_output(prefect_server, live_receiver, webhook_secret):
    # provoke every logging path at least once
    body = dumps(envelope("dialout.connected", unique("room")))
    live_receiver.post(body, signed(new_secret(), body))
    live_receiver.post(body, {})
    live_receiver.post(b'{"test":"test"}', signed(new_secret(), b'{"test":"test"}'))
    live_receiver.post(body, signed(webhook_secret, body))
    health = httpx.get(f"{live_receiver.root}/healthz", timeout=5).text
    output = live_receiver.output()
    assert "POST /webhook" in output or "/webhook" in output  # the logs are really captured
    key_hex = base64.b64decode(webhook_secret).hex()
    for text in (output, health):
        assert webhook_secret not in text
        assert key_hex not in text


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
