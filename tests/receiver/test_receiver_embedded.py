"""create_app() mounted inside another ASGI app, served by uvicorn on 127.0.0.1, with an injected
emitter (the embedding use case). No Prefect server needed."""

from __future__ import annotations

import asyncio
import pickle
import socket
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.routing import Mount

from daily_sip.receiver import create_app
from daily_sip.receiver.events import proof_of, to_prefect_event
from tests.receiver.helpers import dumps, envelope, new_secret, signed, unique


class RecordingEmitter:
    def __init__(self) -> None:
        self.events: list = []
        self.calls = 0
        self.fail = False
        self.gate: asyncio.Event | None = None
        self.called = asyncio.Event()

    async def __call__(self, event) -> None:
        self.calls += 1
        self.called.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise ConnectionError("prefect is down")
        self.events.append(event)


@pytest.fixture
async def serve_app() -> AsyncIterator[Callable]:
    servers: list[tuple[uvicorn.Server, asyncio.Task]] = []

    async def _serve(app) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started
        servers.append((server, task))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield _serve
    for server, task in servers:
        server.should_exit = True
        await task


async def test_mounted_app_emits_the_converted_event(serve_app):
    secret = new_secret()
    emitter = RecordingEmitter()
    inner = create_app(SecretStr(secret), emitter=emitter)
    base = await serve_app(Starlette(routes=[Mount("/daily", app=inner)]))
    env = envelope("dialout.answered", unique("room"), session_id="s1", user_id="u1")
    body = dumps(env)
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.get(f"{base}/daily/healthz")).status_code == 200
        headers = signed(secret, body)
        r = await client.post(f"{base}/daily/webhook", content=body, headers=headers)
        assert r.status_code == 200, r.text
        bad = await client.post(f"{base}/daily/webhook", content=body, headers=signed(new_secret(), body))
        assert bad.status_code == 401
        assert (await client.get(f"{base}/daily/webhook")).status_code == 405
    proof = proof_of(headers["X-Webhook-Timestamp"], headers["X-Webhook-Signature"], body)
    assert emitter.events == [to_prefect_event(env, proof)]


async def test_failed_emit_is_503_and_not_remembered(serve_app):
    secret = new_secret()
    emitter = RecordingEmitter()
    base = await serve_app(create_app(secret, emitter=emitter, path="hook"))
    env = envelope("dialout.stopped", unique("room"))
    body = dumps(env)
    async with httpx.AsyncClient(timeout=10) as client:
        emitter.fail = True
        r = await client.post(f"{base}/hook", content=body, headers=signed(secret, body))
        assert r.status_code == 503
        emitter.fail = False
        r = await client.post(f"{base}/hook", content=body, headers=signed(secret, body))
        assert r.status_code == 200 and not r.json().get("duplicate")
        r = await client.post(f"{base}/hook", content=body, headers=signed(secret, body))
        assert r.status_code == 200 and r.json()["duplicate"] is True
    assert emitter.calls == 2
    assert len(emitter.events) == 1


async def test_concurrent_duplicates_share_one_in_flight_emit(serve_app):
    secret = new_secret()
    emitter = RecordingEmitter()
    emitter.gate = asyncio.Event()
    base = await serve_app(create_app(secret, emitter=emitter))
    body = dumps(envelope("dialout.connected", unique("room")))
    async with httpx.AsyncClient(timeout=10) as client:
        posts = [
            asyncio.create_task(client.post(f"{base}/webhook", content=body, headers=signed(secret, body)))
            for _ in range(5)
        ]
        await asyncio.wait_for(emitter.called.wait(), 10)
        await asyncio.sleep(0.2)  # let the other four arrive while the emit is in flight
        emitter.gate.set()
        responses = await asyncio.gather(*posts)
    assert [r.status_code for r in responses] == [200] * 5
    assert emitter.calls == 1


async def test_dedupe_memory_is_bounded(serve_app):
    secret = new_secret()
    emitter = RecordingEmitter()
    base = await serve_app(create_app(secret, emitter=emitter, dedupe_size=2))
    bodies = [dumps(envelope("dialout.connected", unique("room"))) for _ in range(3)]
    async with httpx.AsyncClient(timeout=10) as client:
        for body in [*bodies, bodies[0]]:  # the first id was evicted by the third
            r = await client.post(f"{base}/webhook", content=body, headers=signed(secret, body))
            assert r.status_code == 200
    assert emitter.calls == 4


def test_secret_is_not_exposed_by_objects_or_errors():
    secret = new_secret()
    app = create_app(SecretStr(secret), emitter=RecordingEmitter())
    receiver = app.state.receiver
    verifier = receiver._verifier
    key_hex = __import__("base64").b64decode(secret).hex()
    for text in (
        repr(app),
        repr(receiver),
        str(receiver),
        repr(verifier),
        str(verifier),
        repr(vars(app.state)),
    ):
        assert secret not in text and key_hex not in text
    with pytest.raises(TypeError):
        pickle.dumps(verifier)
    bad = "x!" + secret
    with pytest.raises(ValueError) as err:
        create_app(bad, emitter=RecordingEmitter())
    assert bad not in str(err.value) and secret not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__
