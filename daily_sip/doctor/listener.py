"""A webhook endpoint inside the doctor's process that keeps every delivery exactly as it came.

The receiver turns deliveries into Prefect events; ``doctor --dial`` needs the raw material
instead: each body and header, when it arrived, whether its signature checks out. It answers 200 at
once, as Daily asks of a webhook endpoint (https://docs.daily.co/reference/rest-api/webhooks).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from daily_sip.serving import bind, url_of


@dataclass
class Delivery:
    at: float  # time.monotonic()
    headers: dict[str, str]
    body: bytes


@dataclass
class Listener:
    url: str
    deliveries: list[Delivery] = field(default_factory=list)

    async def _handle(self, request: Request) -> JSONResponse:
        body = await request.body()
        self.deliveries.append(
            Delivery(time.monotonic(), {k.lower(): v for k, v in request.headers.items()}, body)
        )
        return JSONResponse({"ok": True})


@contextlib.asynccontextmanager
async def listening(
    host: str = "127.0.0.1", port: int = 0, path: str = "/webhook"
) -> AsyncIterator[Listener]:
    """Serve a `Listener` on ``host:port`` (0 picks a port) for the block's duration."""
    sock = bind(host, port)
    listener = Listener(url_of(sock, host, path))
    app = Starlette(routes=[Route(path, listener._handle, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started and not task.done():  # noqa: ASYNC110 (uvicorn sets a flag, no event)
            await asyncio.sleep(0.01)
        yield listener
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)
        sock.close()
