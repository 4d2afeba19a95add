"""``python -m daily_sip.pacer``: the pacer as a process.

The first line on stdout is its base URL (``--port 0`` picks a free port); set it as
``DAILY_PACER_URL`` wherever campaigns run. SIGTERM / Ctrl-C stop it with exit code 0.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from daily_sip.serving import bind, log_to_stderr, serve_app, url_of

from .app import HOLD_SECONDS, create_app, logger

TOKEN_ENVVAR = "DAILY_PACER_TOKEN"


def serve(
    host: str = "127.0.0.1",
    port: int = 8789,
    token: str | None = None,
    log_level: str = "warning",
    hold_seconds: float = HOLD_SECONDS,
) -> None:
    """Bind, print the base URL as the first stdout line, then serve until SIGTERM / Ctrl-C."""
    log_to_stderr(logger, log_level)
    sock = bind(host, port)
    try:
        print(url_of(sock, host), flush=True)
        serve_app(create_app(token, hold_seconds), sock, log_level=log_level, lifespan="off")
    finally:
        sock.close()


def pacer(
    host: Annotated[str, typer.Option(help="Interface to bind (keep it private).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind; 0 picks a free one.")] = 8789,
    token: Annotated[
        str | None,
        typer.Option(
            envvar=TOKEN_ENVVAR,
            show_default=False,
            help="Require `Authorization: Bearer <token>`; prefer the environment variable.",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="stderr log level.")] = "warning",
    hold_seconds: Annotated[
        float,
        typer.Option(
            min=0.1,
            help="Longest a waiting ask is held open before the caller asks again; keep it "
            "below the idle timeout of any proxy in between.",
        ),
    ] = HOLD_SECONDS,
) -> None:
    """Hand out Daily call permits to every campaign of one account (see daily_sip.tasks.ratelimit)."""
    try:
        serve(host, port, token or os.environ.get(TOKEN_ENVVAR) or None, log_level, hold_seconds)
    except OSError as exc:
        typer.echo(f"pacer: {exc}", err=True)
        raise typer.Exit(2) from None
