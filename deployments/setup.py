"""``daily-sip setup``: everything the deployments need on a Prefect server, in one idempotent command.

1. the `DailyCredentials` block (default name ``daily``, the deployments' ``credentials_block``):
   API key, API URL and the webhook HMAC secret. Values not given keep what the block already
   has; a missing webhook secret is generated (base64, Daily's format) and never printed;
2. the ``process`` work pool the deployments use (default ``daily-sip``), if it does not exist;
3. the Prefect variable ``daily_webhook_url`` (``--webhook-url``), which ``prefect deploy`` and
   ``daily-sip serve`` put into the deployments' ``webhook_url`` parameter. When the domain's
   webhook feeds another endpoint it stops before saving anything, unless ``--take-over-webhook``
   (`daily_sip.deployments.webhook_takeover`: repoint it, relaying to the previous endpoint with
   ``--relay-to-previous``).

Before anything is saved it checks the shared pacer (``DAILY_PACER_URL``, `daily_sip.pacer`)
answers, when one is set. It creates no Prefect global concurrency limits: Daily's rate limits are
kept by the pacer (or in-process), and a room's one-campaign lock is a lease in a Prefect Variable
(`daily_sip.flows.provision.room_lock`); limits that governed nothing would only mislead in the UI.

Running it again changes only what differs. Secrets: prefer the environment variables to the
options (command lines are visible to other users in ``ps``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

import typer

from daily_sip.prefect_server import require_prefect_server
from daily_sip.terminal import command

from .definitions import WEBHOOK_URL_VARIABLE
from .webhook_takeover import relay_block_for, take_over

if TYPE_CHECKING:
    from daily_sip.tasks import DailyCredentials


def _check_secret(secret: str) -> None:
    try:
        key = base64.b64decode(secret.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        # No detail from the value itself: it must not end up in a terminal or a log.
        raise typer.BadParameter(
            "is not a non-empty base64 string (Daily's webhook `hmac` format)",
            param_hint="--webhook-secret / DAILY_WEBHOOK_SECRET",
        )


async def _save_block(
    name: str,
    api_key: str | None,
    api_url: str | None,
    webhook_secret: str | None,
    verify: bool = True,
    before_save: Callable[[DailyCredentials], Awaitable[None]] | None = None,
) -> list[str]:
    from pydantic import SecretStr

    from daily_sip.local_stack import new_webhook_secret
    from daily_sip.tasks import DailyCredentials
    from daily_sip.tasks.client import DEFAULT_API_URL

    try:
        existing: DailyCredentials | None = await DailyCredentials.aload(name)
    except ValueError:
        existing = None
    if not api_key and existing is None:
        raise typer.BadParameter(
            "is required the first time (Daily dashboard > Developers)",
            param_hint="--api-key / DAILY_API_KEY",
        )
    lines = []
    generated = False
    if webhook_secret:
        secret: SecretStr | None = SecretStr(webhook_secret.strip())
        secret_note = "webhook secret set from --webhook-secret / DAILY_WEBHOOK_SECRET"
    elif existing is not None and existing.webhook_secret is not None:
        secret = existing.webhook_secret
        secret_note = "webhook secret kept"
    else:
        secret, generated = SecretStr(new_webhook_secret()), True
        secret_note = "webhook secret generated"
    block = DailyCredentials(
        api_key=SecretStr(api_key) if api_key else existing.api_key,
        api_url=api_url or (existing.api_url if existing else DEFAULT_API_URL),
        webhook_secret=secret,
        timeout_seconds=existing.timeout_seconds if existing else 15.0,
    )
    changed = existing is None or any(
        _plain(getattr(block, f)) != _plain(getattr(existing, f))
        for f in ("api_key", "api_url", "webhook_secret", "timeout_seconds")
    )
    if verify:
        # One GET before saving: a wrong key or a dead URL is caught here, not at 9:00 on Monday.
        from daily_sip.flows.provision.preflight import preflight

        await preflight(block)
        if before_save is not None:
            await before_save(block)
    if changed:
        await block.asave(name, overwrite=True)
    verb = "created" if existing is None else ("updated" if changed else "unchanged")
    checked = "key and URL checked" if verify else "not checked (--no-verify)"
    lines.append(
        f"credentials block daily-credentials/{name}: {verb} (API {block.api_url}, {checked}; {secret_note})"
    )
    if generated:
        lines.append(
            "  The receiver needs this secret; it is stored in the block, not shown here. Start the "
            f"receiver with it: {command('daily-sip')} receiver --credentials-block {name}"
        )
    return lines


def _plain(value: object) -> object:
    get = getattr(value, "get_secret_value", None)
    return get() if get else value


async def _ensure_work_pool(name: str, pool_type: str = "process") -> str:
    """The pool the deployments go to: ``process`` (a process per campaign, `prefect worker start`)
    or the in-process type of `daily-sip worker` (many campaigns per process)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    from daily_sip.worker import CampaignWorker

    if pool_type == "process":
        from prefect.workers.process import ProcessWorker as worker_class

        start = f"{command('prefect')} worker start --pool {name}"
    else:
        worker_class, start = CampaignWorker, f"{command('daily-sip')} worker --pool {name}"
    async with get_client() as client:
        try:
            pool = await client.read_work_pool(name)
        except ObjectNotFound:
            await client.create_work_pool(
                WorkPoolCreate(
                    name=name,
                    type=pool_type,
                    base_job_template=worker_class.get_default_base_job_template(),
                    description="Runs the Daily SIP campaign deployments (see `daily-sip init`).",
                )
            )
            return f"work pool {name}: created (type {pool_type}); start a worker: {start}"
    if pool.type != pool_type:
        raise typer.BadParameter(
            f"work pool {name!r} exists with type {pool.type!r}, not {pool_type!r}; pick another name",
            param_hint="--work-pool",
        )
    return f"work pool {name}: exists (type {pool_type})"


async def _set_webhook_url(url: str) -> str:
    from prefect.variables import Variable

    current = await Variable.aget(WEBHOOK_URL_VARIABLE, default=None)
    if current == url:
        return f"variable {WEBHOOK_URL_VARIABLE}: unchanged ({url})"
    await Variable.aset(WEBHOOK_URL_VARIABLE, url, overwrite=True)
    return f"variable {WEBHOOK_URL_VARIABLE}: {'set' if current is None else 'updated'} to {url}"


async def run_setup(
    *,
    api_key: str | None = None,
    api_url: str | None = None,
    webhook_secret: str | None = None,
    webhook_url: str | None = None,
    block_name: str = "daily",
    work_pool: str = "daily-sip",
    verify: bool = True,
    work_pool_type: str = "process",
    take_over_webhook: bool = False,
    relay_to_previous: bool = False,
) -> list[str]:
    """Do the setup; returns one line per thing done (no secret in any of them).

    With ``verify`` (the default) the key and URL must pass one ``GET /rooms?limit=1`` before
    anything is saved; `daily_sip.flows.provision.preflight.PreflightError` says what is wrong otherwise.
    """
    if webhook_secret:
        _check_secret(webhook_secret)
    if api_key is not None:
        from daily_sip.tasks.client import check_api_key
        from daily_sip.tasks.errors import DailyKeyError

        try:
            check_api_key(api_key)  # saved as given, so refuse here what Daily never accepts
        except DailyKeyError as exc:
            raise typer.BadParameter(str(exc), param_hint="--api-key / DAILY_API_KEY") from None
    if relay_to_previous and not take_over_webhook:
        raise typer.BadParameter("goes with --take-over-webhook", param_hint="--relay-to-previous")
    if take_over_webhook and not (webhook_url and verify):
        raise typer.BadParameter(
            "needs --webhook-url (the receiver's public URL) and the Daily API (not --no-verify)",
            param_hint="--take-over-webhook",
        )
    pacer = await _check_pacer()
    refuse = _refuse_foreign_webhook(webhook_url) if webhook_url and not take_over_webhook else None
    lines = await _save_block(block_name, api_key, api_url, webhook_secret, verify, before_save=refuse)
    lines.append(pacer)
    lines.append(await _ensure_work_pool(work_pool, work_pool_type))
    if webhook_url:
        lines.append(await _set_webhook_url(webhook_url))
    if take_over_webhook and webhook_url:
        from daily_sip.tasks import DailyCredentials

        creds = await DailyCredentials.aload(block_name)
        relay_block = relay_block_for(block_name) if relay_to_previous else None
        lines += await take_over(creds, webhook_url, relay_block=relay_block, credentials_block=block_name)
    return lines


def _refuse_foreign_webhook(webhook_url: str) -> Callable[[DailyCredentials], Awaitable[None]]:
    """Raises `WebhookOwnedElsewhere` (nothing saved yet) when the domain's webhook feeds another endpoint."""
    from daily_sip.tasks.webhooks import WebhookOwnedElsewhere, afind_foreign_webhook

    async def check(creds: DailyCredentials) -> None:
        if (hook := await afind_foreign_webhook(webhook_url, credentials=creds)) is not None:
            raise WebhookOwnedElsewhere(hook, webhook_url)

    return check


class PacerUnreachable(Exception):
    """``DAILY_PACER_URL`` is set but no pacer answers there."""


async def _check_pacer() -> str:
    """One line on how Daily's rate limits will be kept; raises `PacerUnreachable` for a dead URL."""
    import httpx

    from daily_sip.tasks.ratelimit import PACER_URL_ENV, pacer_headers, pacer_url, pacer_urls

    url = pacer_url()
    if not url:
        return (
            f"pacer: {PACER_URL_ENV} not set here; Daily's rate limits are kept per process "
            "(right for one worker; several workers need `python -m daily_sip.pacer`)"
        )
    ok = False
    async with httpx.AsyncClient(timeout=5, trust_env=False, headers=pacer_headers()) as http:
        for one in pacer_urls():  # several pacers sharing one book: one answering is enough
            try:
                answer = await http.get(f"{one}/healthz")
                ok = ok or (answer.status_code == 200 and answer.json().get("ok") is True)
            except (httpx.HTTPError, ValueError):
                pass
    if not ok:
        raise PacerUnreachable(
            f"{PACER_URL_ENV}={url}: no pacer answers at /healthz; start "
            "`python -m daily_sip.pacer` there, or unset it for one worker"
        )
    return f"pacer: {url} answers; every worker needs {PACER_URL_ENV}={url}"


def setup(
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="DAILY_API_KEY",
            show_default=False,
            help="Daily API key (the stand-in's is daily-standin-dev-key). Required the first time.",
        ),
    ] = None,
    api_url: Annotated[
        str | None,
        typer.Option(
            envvar="DAILY_API_URL",
            show_default=False,
            help="Daily REST API base URL; default https://api.daily.co/v1 (or what the block has).",
        ),
    ] = None,
    webhook_secret: Annotated[
        str | None,
        typer.Option(
            envvar="DAILY_WEBHOOK_SECRET",
            show_default=False,
            help="Base64 HMAC secret for Daily's webhooks; default: keep the block's, else generate one.",
        ),
    ] = None,
    webhook_url: Annotated[
        str | None,
        typer.Option(
            envvar="DAILY_WEBHOOK_URL",
            show_default=False,
            help="Public URL of the webhook receiver, stored as Prefect variable daily_webhook_url.",
        ),
    ] = None,
    block_name: Annotated[str, typer.Option(help="Name of the DailyCredentials block.")] = "daily",
    work_pool: Annotated[str, typer.Option(help="Name of the work pool to create.")] = "daily-sip",
    in_process: Annotated[
        bool,
        typer.Option(
            "--in-process",
            help="Make it a pool for `daily-sip worker` (many campaigns per process) "
            "instead of a `process` pool (a process per campaign).",
        ),
    ] = False,
    verify: Annotated[
        bool,
        typer.Option(
            help="Check the key and URL with one call to the Daily API before saving; --no-verify to "
            "prepare offline."
        ),
    ] = True,
    take_over_webhook: Annotated[
        bool,
        typer.Option(
            "--take-over-webhook",
            help="The domain's one Daily webhook feeds another endpoint: point it at --webhook-url anyway "
            "(its URL and secret change; that endpoint gets no more events unless --relay-to-previous).",
        ),
    ] = False,
    relay_to_previous: Annotated[
        bool,
        typer.Option(
            "--relay-to-previous",
            help="With --take-over-webhook: save the previous endpoint as Prefect Secret block "
            "daily-webhook-relay (BLOCK-NAME-webhook-relay) and repoint once the receiver relays to it "
            "(`receiver --relay-block daily-webhook-relay`), "
            "re-signing every delivery with that endpoint's own secret.",
        ),
    ] = False,
) -> None:
    """Store the Daily credentials block, the work pool and the webhook URL; check the pacer (idempotent)."""
    from daily_sip.flows.provision.preflight import PreflightError
    from daily_sip.tasks.webhooks import WebhookOwnedElsewhere
    from daily_sip.worker import WORKER_TYPE

    require_prefect_server(
        "there is no Prefect server to set up (Prefect's temporary local server forgets everything at exit)"
    )
    try:
        lines = asyncio.run(
            run_setup(
                api_key=api_key,
                api_url=api_url,
                webhook_secret=webhook_secret,
                webhook_url=webhook_url,
                block_name=block_name,
                work_pool=work_pool,
                verify=verify,
                work_pool_type=WORKER_TYPE if in_process else "process",
                take_over_webhook=take_over_webhook,
                relay_to_previous=relay_to_previous,
            )
        )
    except PreflightError as exc:
        typer.echo(f"Nothing saved: {exc} (or --no-verify to save it unchecked)", err=True)
        raise typer.Exit(2) from None
    except (PacerUnreachable, WebhookOwnedElsewhere) as exc:
        typer.echo(f"Nothing saved: {exc}", err=True)
        raise typer.Exit(2) from None
    except typer.BadParameter as exc:
        typer.echo(f"{exc.param_hint}: {exc.message}", err=True)
        raise typer.Exit(2) from None
    for line in lines:
        typer.echo(line)
    # Each line runs as shown from here, venv activated or not (`.venv/bin/prefect`, see `command`).
    worker = (
        f"{command('daily-sip')} worker --pool {work_pool}"
        if in_process
        else f"{command('prefect')} worker start --pool {work_pool}   # or: {command('daily-sip')} serve"
    )
    typer.echo("Next, from this folder:")
    typer.echo(f"  {command('daily-sip')} init deployments")
    typer.echo(f"  (cd deployments && {command('prefect', run_in='deployments')} deploy --all)")
    typer.echo(f"  {worker}")
