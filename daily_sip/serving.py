"""Serving one of our HTTP processes (stand-in, receiver, pacer) the same way.

Each binds its socket *before* it prints its URL as the first stdout line, so a script that
starts it can read the URL and connect at once (early connections wait in the backlog), and
``--port 0`` works. SIGTERM and Ctrl-C end it gracefully with exit code 0.

Example:
    ```python
    sock = bind("127.0.0.1", 0)
    print(url_of(sock, "127.0.0.1", "/webhook"), flush=True)
    serve_app(app, sock, log_level="warning")
    ```
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
from typing import Any, Literal


def bind(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP (not 0): asyncio only sets TCP_NODELAY on accepted sockets whose
    # proto says TCP; without it Nagle + delayed ACK add ~40 ms to every keep-alive response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket, host: str, path: str = "") -> str:
    """``http://host:port/path`` of a bound socket (IPv6 hosts bracketed)."""
    shown = f"[{host}]" if ":" in host else host
    route = path if not path or path.startswith("/") else "/" + path
    return f"http://{shown}:{sock.getsockname()[1]}{route}"


def log_to_stderr(logger: logging.Logger, level: str) -> None:
    """Our own log lines go to stderr: stdout carries only the URL line."""
    if logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False


def freeze_startup_heap() -> None:
    """Keep what was imported out of every later garbage collection (`gc.freeze`).

    A full collection walks every object, and after importing Prefect that alone took ~160 ms
    here; a server answering on one event loop stops for that long each time, which delays
    requests sent right after their rate-limit permit (Daily then counts them in a later
    window, with the next ones: 429) and events the campaigns wait for.
    """
    import gc

    gc.collect()
    gc.freeze()


def serve_app(
    app: Any,
    sock: socket.socket,
    *,
    log_level: str = "info",
    access_log: bool = False,
    lifespan: Literal["auto", "on", "off"] = "on",
    graceful_seconds: int = 2,
    log_config: dict[str, Any] | None = None,
) -> None:
    """Run ``app`` with uvicorn on ``sock`` until SIGTERM / Ctrl-C, then return normally."""
    import uvicorn

    options: dict[str, Any] = {"log_config": log_config} if log_config is not None else {}
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level=log_level,
            access_log=access_log,
            lifespan=lifespan,
            timeout_graceful_shutdown=graceful_seconds,
            **options,
        )
    )

    def _stop(signum: int, frame: Any) -> None:
        server.should_exit = True

    # uvicorn swaps in its own handlers while running and, after a graceful shutdown, re-raises
    # the captured signal against the handlers it found: ours (exit code 0) instead of the
    # defaults (killed by SIGTERM / KeyboardInterrupt).
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    freeze_startup_heap()
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
