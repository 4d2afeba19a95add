"""Build the ASGI app and run it: bind first, announce the URL, then serve."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette

from .backend import Backend
from .clock import Clock, Scheduler
from .config import EmulatorConfig
from .delivery import Dispatcher
from .ratelimit import RateLimiter
from .responses import Api


def build_app(
    config: EmulatorConfig | None = None,
    *,
    clock: Clock | None = None,
    scheduler: Scheduler | None = None,
) -> Starlette:
    """The stand-in as a Starlette app; `app.state` holds backend, dispatcher and api."""
    config = config or EmulatorConfig()
    backend = Backend(config, clock=clock, scheduler=scheduler)
    dispatcher = Dispatcher(config, backend.webhooks, clock=backend.clock)
    backend.subscribe(dispatcher.publish)
    limiter = RateLimiter(config.rate_limit_scale, clock=backend.clock)
    api = Api(config, backend, dispatcher, limiter)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        # Timers and workers belong to this loop; stop them before it closes.
        backend.reset()
        await dispatcher.close()

    app = Starlette(routes=api.routes(), lifespan=lifespan)
    app.state.config = config
    app.state.backend = backend
    app.state.dispatcher = dispatcher
    app.state.api = api
    return app


def _log_config(level: str) -> dict[str, Any]:
    # uvicorn's default sends access logs to stdout; stdout is reserved for the URL line.
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.access": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "daily_sip.standin": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
        },
    }


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # An explicit IPPROTO_TCP makes asyncio set TCP_NODELAY on accepted connections;
    # with proto 0 Nagle plus delayed ACKs add ~40 ms to every keep-alive request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    # Listening before the URL is printed means early clients queue instead of failing.
    sock.listen(512)
    sock.setblocking(False)
    return sock


def base_url(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def run(config: EmulatorConfig) -> int:
    """Serve until SIGTERM/Ctrl-C; prints the base URL as the first stdout line."""
    import uvicorn  # imported here so `build_app` users do not pay for it

    # uvicorn re-raises the signal it caught after a graceful shutdown; with these
    # handlers in place (also covering the start-up window) the process ends with 0.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    sock = bind(config.host, config.port)
    try:
        print(base_url(sock, config.host), flush=True)
        app = build_app(config)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                log_config=_log_config(config.log_level),
                log_level=config.log_level,
                access_log=config.log_level in ("debug", "trace"),
                lifespan="on",
                timeout_graceful_shutdown=2,
            )
        )
        asyncio.run(server.serve(sockets=[sock]))
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        sock.close()
        sys.stdout.flush()
    return 0
