"""Serving the receiver: ``daily-sip receiver`` / ``python -m daily_sip.receiver``.

The first line on stdout is the webhook URL (``--port 0`` picks a free port), so scripts can
start it and read where it listens. SIGTERM / Ctrl-C shut down gracefully with exit code 0.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, cast

import typer

from daily_sip.serving import bind, log_to_stderr, serve_app, url_of

from .app import Emitter, create_app, logger
from .relay import RELAY_SECRET_ENVVAR, RelayTarget, load_relay_block, shown_url

SECRET_ENVVAR = "DAILY_WEBHOOK_SECRET"


def serve(
    host: str = "127.0.0.1",
    port: int = 8788,
    secret: Any = None,
    *,
    max_age_seconds: float | None = 300,
    path: str = "/webhook",
    emitter: Emitter | None = None,
    log_level: str = "info",
    access_log: bool = True,
    spool_dir: str | None = None,
    relay_to: RelayTarget | None = None,
) -> None:
    """Bind, build the app, print the webhook URL as the first stdout line, then serve.

    ``port=0`` picks a free port (the printed URL has the real one). SIGTERM / Ctrl-C shut down
    gracefully and return normally (exit code 0 for the CLI).
    """
    log_to_stderr(logger, log_level)
    sock = bind(host, port)
    try:
        app = create_app(
            secret,
            max_age_seconds=max_age_seconds,
            path=path,
            emitter=emitter,
            spool_dir=spool_dir,
            relay_to=relay_to,
        )
        if relay_to is not None:
            logger.info(
                "relaying every delivery to %s, re-signed with its own secret", shown_url(relay_to.url)
            )
        if not app.state.receiver.has_secret:
            logger.warning(
                "no webhook secret (%s): verification pings are answered, every "
                "other delivery gets 503 until restarted with the secret",
                SECRET_ENVVAR,
            )
        print(url_of(sock, host, path), flush=True)
        serve_app(app, sock, log_level=log_level, access_log=access_log, graceful_seconds=5)
    finally:
        sock.close()


def receiver(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind; 0 picks a free one.")] = 8788,
    secret: Annotated[
        str | None,
        typer.Option(
            envvar=SECRET_ENVVAR,
            show_default=False,
            help="Daily webhook `hmac` secret (base64). Prefer the environment variable.",
        ),
    ] = None,
    max_age: Annotated[
        float,
        typer.Option(
            help="Reject deliveries whose X-Webhook-Timestamp is further than this from now (s).",
        ),
    ] = 300,
    credentials_block: Annotated[
        str | None,
        typer.Option(
            show_default=False,
            help="Take the secret from this saved DailyCredentials block (`daily-sip setup` saves "
            "`daily`) instead of --secret / DAILY_WEBHOOK_SECRET.",
        ),
    ] = None,
    spool_dir: Annotated[
        str | None,
        typer.Option(
            envvar="DAILY_RECEIVER_SPOOL_DIR",
            show_default=False,
            help="Answer Daily as soon as an event is synced to a journal in this directory and "
            "hand it to Prefect in the background (recommended under load; keep it on a disk that "
            "survives restarts). Default: answer only after Prefect took the event.",
        ),
    ] = None,
    relay_to: Annotated[
        str | None,
        typer.Option(
            envvar="DAILY_RELAY_URL",
            show_default=False,
            help="Also forward every verified delivery to this URL (the webhook this receiver took "
            f"over), re-signed with its own secret from {RELAY_SECRET_ENVVAR}; needs --spool-dir.",
        ),
    ] = None,
    relay_event_types: Annotated[
        str | None,
        typer.Option(
            show_default=False,
            help="Comma-separated Daily event types to relay (that webhook's types); default: all.",
        ),
    ] = None,
    relay_block: Annotated[
        str | None,
        typer.Option(
            show_default=False,
            help="Take the relay URL, secret and event types from this Prefect Secret block (`daily-sip "
            "setup --take-over-webhook --relay-to-previous` saves `daily-webhook-relay`).",
        ),
    ] = None,
) -> None:
    """Receive Daily webhooks on http://HOST:PORT/webhook and emit them as Prefect events."""
    if credentials_block:
        from daily_sip.tasks import DailyCredentials

        try:
            # Called from sync code, Prefect's `load` returns the block (`aload` is its async twin).
            block = cast(DailyCredentials, DailyCredentials.load(credentials_block))
        except ValueError as exc:
            typer.echo(f"receiver: cannot load credentials block {credentials_block!r}: {exc}", err=True)
            raise typer.Exit(2) from None
        if block.webhook_secret is None:
            typer.echo(
                f"receiver: block {credentials_block!r} has no webhook_secret; run "
                "`daily-sip setup` (it generates one)",
                err=True,
            )
            raise typer.Exit(2)
        secret = block.webhook_secret.get_secret_value()
    if secret is None:
        secret = os.environ.get(SECRET_ENVVAR) or None
    try:
        target = _relay_target(relay_to, relay_event_types, relay_block)
        serve(host, port, secret, max_age_seconds=max_age, spool_dir=spool_dir, relay_to=target)
    except (ValueError, RuntimeError, OSError) as exc:
        typer.echo(f"receiver: {exc}", err=True)
        raise typer.Exit(2) from None


def _relay_target(url: str | None, event_types: str | None, block: str | None) -> RelayTarget | None:
    """The relay target from the options (or None); ValueError with one line naming the fix."""
    from pydantic import SecretStr

    if block:
        if url:
            raise ValueError("give --relay-block or --relay-to, not both")
        return load_relay_block(block)
    if not url:
        return None
    relay_secret = os.environ.get(RELAY_SECRET_ENVVAR, "").strip()
    if not relay_secret:
        raise ValueError(
            f"--relay-to needs {RELAY_SECRET_ENVVAR}: the base64 `hmac` secret of the webhook relayed to"
        )
    types = [t.strip() for t in (event_types or "").split(",") if t.strip()] or None
    return RelayTarget(url, SecretStr(relay_secret), types)
