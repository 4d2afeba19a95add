"""``python -m daily_sip.pacer``: the pacer as a process.

The first line on stdout is its base URL (``--port 0`` picks a free port); set it as
``DAILY_PACER_URL`` wherever campaigns run. SIGTERM / Ctrl-C stop it with exit code 0.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from daily_sip.serving import bind, log_to_stderr, serve_app, url_of

from .app import HOLD_SECONDS, create_app, create_shared_app, logger
from .statefile import StateFile, StateFileError, default_state_file

TOKEN_ENVVAR = "DAILY_PACER_TOKEN"
STATE_FILE_ENVVAR = "DAILY_PACER_STATE_FILE"
REDIS_ENVVAR = "DAILY_PACER_REDIS_URL"


class RedisUnreachableError(Exception):
    pass


def _shared_books(redis_url: str) -> Any:
    """The Redis book store, after one ping (a pacer without its book must not start)."""
    import redis

    from .shared import RedisBooks

    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=5).ping()
    except (redis.RedisError, ValueError) as exc:
        raise RedisUnreachableError(
            f"Redis at --redis-url unreachable ({type(exc).__name__}: {exc})"
        ) from None
    return RedisBooks(redis_url)


def serve(
    host: str = "127.0.0.1",
    port: int = 8789,
    token: str | None = None,
    log_level: str = "warning",
    hold_seconds: float = HOLD_SECONDS,
    state_file: Path | None = None,
    redis_url: str | None = None,
) -> None:
    """Bind, print the base URL as the first stdout line, then serve until SIGTERM / Ctrl-C.

    The book is read from ``state_file`` before anything is bound, and kept there; with
    ``redis_url`` it lives in Redis instead, shared with every pacer of that Redis.
    """
    log_to_stderr(logger, log_level)
    state = StateFile(state_file) if state_file is not None and not redis_url else None
    try:
        if redis_url:
            app = create_shared_app(_shared_books(redis_url), token, hold_seconds)
        else:
            app = create_app(token, hold_seconds, state)
        sock = bind(host, port)
        try:
            print(url_of(sock, host), flush=True)
            serve_app(app, sock, log_level=log_level, lifespan="off")
        finally:
            sock.close()
    finally:
        if state is not None:
            state.close()


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
    state_file: Annotated[
        str | None,
        typer.Option(
            envvar=STATE_FILE_ENVVAR,
            show_default=False,
            help="Where the permit book is kept so that a restart grants no more than Daily's "
            "window allows (default: ~/.local/state/daily-sip/pacer-HOST-PORT.json for a fixed "
            "--port; none for --port 0). '' keeps it in memory only.",
        ),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(
            envvar=REDIS_ENVVAR,
            show_default=False,
            help="Keep the book in Redis (redis://host:port/db): several pacers then serve the "
            "same account's windows, any of them may die (see docs/ha.md).",
        ),
    ] = None,
) -> None:
    """Hand out Daily call permits to every campaign of one account (see daily_sip.tasks.ratelimit)."""
    path = default_state_file(host, port) if state_file is None else Path(state_file) if state_file else None
    try:
        serve(
            host,
            port,
            token or os.environ.get(TOKEN_ENVVAR) or None,
            log_level,
            hold_seconds,
            path,
            redis_url,
        )
    except (OSError, StateFileError, RedisUnreachableError) as exc:
        typer.echo(f"pacer: {exc}", err=True)
        raise typer.Exit(2) from None
