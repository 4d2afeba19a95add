"""``python -m daily_sip.pacer``: the pacer as a process.

The first line on stdout is its base URL (``--port 0`` picks a free port); set it as
``DAILY_PACER_URL`` wherever campaigns run. SIGTERM / Ctrl-C stop it with exit code 0.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from typing import Annotated, Any

import typer

from .app import create_app, logger

TOKEN_ENVVAR = "DAILY_PACER_TOKEN"


def serve(host: str = "127.0.0.1", port: int = 8789, token: str | None = None,
          log_level: str = "warning") -> None:
    """Bind, print the base URL as the first stdout line, then serve until SIGTERM / Ctrl-C."""
    import uvicorn

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(log_level.upper())
    logger.propagate = False
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP: TCP_NODELAY gets set
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        url_host = f"[{host}]" if ":" in host else host
        print(f"http://{url_host}:{sock.getsockname()[1]}", flush=True)
        server = uvicorn.Server(uvicorn.Config(create_app(token), log_level=log_level, access_log=False,
                                               lifespan="off", timeout_graceful_shutdown=2))

        def _stop(signum: int, frame: Any) -> None:
            server.should_exit = True

        previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            server.run(sockets=[sock])
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
    finally:
        sock.close()


def pacer(
    host: Annotated[str, typer.Option(help="Interface to bind (keep it private).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind; 0 picks a free one.")] = 8789,
    token: Annotated[str | None, typer.Option(
        envvar=TOKEN_ENVVAR, show_default=False,
        help="Require `Authorization: Bearer <token>`; prefer the environment variable.")] = None,
    log_level: Annotated[str, typer.Option(help="stderr log level.")] = "warning",
) -> None:
    """Hand out Daily call permits to every campaign of one account (see daily_sip.tasks.ratelimit)."""
    try:
        serve(host, port, token or os.environ.get(TOKEN_ENVVAR) or None, log_level)
    except OSError as exc:
        typer.echo(f"pacer: {exc}", err=True)
        raise typer.Exit(2) from None
