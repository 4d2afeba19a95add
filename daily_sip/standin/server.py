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

from daily_sip.serving import bind, serve_app, url_of

from .backend import Backend
from .clock import Clock, Scheduler
from .config import EmulatorConfig
from .delivery import Dispatcher
from .ratelimit import RateLimiter
from .responses import Api
from .sip_real import SipStack, SipUnavailable


def build_app(
    config: EmulatorConfig | None = None,
    *,
    clock: Clock | None = None,
    scheduler: Scheduler | None = None,
    sip: SipStack | None = None,
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
        if sip is not None:
            # PJSIP reports on its own thread; the legs live on this loop.
            sip.deliver = asyncio.get_running_loop().call_soon_threadsafe
            backend.call_service.attach_sip(sip, asyncio.get_running_loop())
        yield
        # Timers and workers belong to this loop; stop them before it closes.
        backend.reset()
        if sip is not None:
            await asyncio.to_thread(sip.close)  # CANCEL/BYE whatever is still up
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


def base_url(sock: socket.socket, host: str) -> str:
    return url_of(sock, host, "/v1")


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def run(config: EmulatorConfig) -> int:
    """Serve until SIGTERM/Ctrl-C; prints the base URL as the first stdout line."""
    # A signal before serving starts (while the app is built) also ends the process with 0.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    sip: SipStack | None = None
    if config.sip_mode == "real":
        sip = SipStack(config.sip_bind, deliver=lambda fn: None)
        try:
            sip.start()
        except SipUnavailable as exc:
            print(f"daily-sip emulator: {exc}", file=sys.stderr, flush=True)
            sip.close()
            return 2
    sock = bind(config.host, config.port, backlog=512)
    try:
        print(base_url(sock, config.host), flush=True)
        level = config.log_level
        serve_app(
            build_app(config, sip=sip),
            sock,
            log_level=level,
            log_config=_log_config(level),
            access_log=level in ("debug", "trace"),
        )
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        if sip is not None:
            sip.close()
        sock.close()
        sys.stdout.flush()
    return 0
