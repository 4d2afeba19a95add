"""``daily-sip serve``: the shipped deployments, served from this process without a work pool.

Built from `definitions` (the same definitions ``prefect.yaml`` is rendered from) with Prefect's
own ``Flow.ato_deployment``, so the names, descriptions, tags, schedules, triggers, concurrency
limits and parameters are those of ``prefect deploy``. What differs: flow runs execute in
subprocesses of this process, with this environment. Stop it with Ctrl-C; Prefect then pauses
the schedules.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from daily_sip.prefect_server import require_prefect_server

from .definitions import DEFAULT_BLOCK, WEBHOOK_URL_VARIABLE, CampaignDeployment, by_name

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment


def _schedule(spec: dict[str, Any]) -> Any:
    from prefect.schedules import Cron

    return Cron(spec["cron"], timezone=spec.get("timezone"))


def _fill(value: Any, values: dict[str, str]) -> Any:
    """Our own definitions' ``{{ campaign.room }}``-style placeholders (event templates are kept)."""
    if isinstance(value, str):
        for key, replacement in values.items():
            value = value.replace("{{ " + key + " }}", replacement)
        return value
    if isinstance(value, dict):
        return {k: v if k == "parameters" else _fill(v, values) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_fill(v, values) for v in value]
    return value


async def build_deployment(
    d: CampaignDeployment,
    *,
    campaigns_dir: Path | None = None,
    block: str = DEFAULT_BLOCK,
    webhook_url: str = "",
) -> RunnerDeployment:
    """One RunnerDeployment of ``dial_campaign`` from its definition."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.deployments.runner import EntrypointType
    from prefect.events import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    from daily_sip.flows.dial_campaign import dial_campaign
    from daily_sip.flows.sweeper import sweep_ledgers

    from .steps import campaign_from_file

    flow = dial_campaign if d.campaign_parameters else sweep_ledgers
    parameters: dict[str, Any] = (
        {"credentials_block": block, "webhook_url": webhook_url, **d.extra_parameters}
        if d.campaign_parameters
        else dict(d.extra_parameters)
    )
    placeholders: dict[str, str] = {}
    if d.campaign_file:
        path = Path(campaigns_dir, Path(d.campaign_file).name) if campaigns_dir else d.campaign_file
        step = campaign_from_file(str(path), require_room=d.require_room)
        parameters["campaign"] = step["campaign"]
        placeholders = {f"{d.step_id}.room": step["room"], f"{d.step_id}.name": step["name"]}
    adapter = TypeAdapter(DeploymentTriggerTypes)
    triggers = [adapter.validate_python(_fill(t, placeholders)) for t in d.triggers]
    limit = ConcurrencyLimitConfig(**d.concurrency_limit) if d.concurrency_limit else None
    return await flow.ato_deployment(
        name=d.name,
        description=d.description,
        tags=list(d.tags),
        parameters=parameters,
        schedules=[_schedule(s) for s in d.schedules],
        triggers=triggers,
        concurrency_limit=limit,
        enforce_parameter_schema=True,
        # The engine imports the flow from the installed package, whatever the working directory.
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


async def build_deployments(
    names: list[str] | None = None,
    *,
    campaigns_dir: Path | None = None,
    block: str = DEFAULT_BLOCK,
) -> list[RunnerDeployment]:
    """The shipped deployments (all, or the named ones), ready for ``serve``."""
    from prefect.variables import Variable

    webhook_url = await Variable.aget(WEBHOOK_URL_VARIABLE, default="") or ""
    return [
        await build_deployment(d, campaigns_dir=campaigns_dir, block=block, webhook_url=str(webhook_url))
        for d in by_name(names)
    ]


def _describe(deployment: RunnerDeployment) -> str:
    parts = []
    for s in deployment.schedules or []:
        sched = s.schedule
        what = getattr(sched, "cron", None) or getattr(sched, "rrule", None) or getattr(sched, "interval", "")
        tz = getattr(sched, "timezone", None)
        parts.append(f"schedule {what}{f' ({tz})' if tz else ''}")
    for t in deployment.triggers or []:
        parts.append(f"on {', '.join(sorted(getattr(t, 'expect', None) or ['event']))}")
    if deployment.concurrency_limit:
        strategy = getattr(deployment.concurrency_options, "collision_strategy", None)
        parts.append(
            f"at most {deployment.concurrency_limit} at once"
            + (f" ({getattr(strategy, 'value', strategy)})" if strategy else "")
        )
    return f"{deployment.flow_name}/{deployment.name}: " + ("; ".join(parts) or "ad hoc runs only")


def serve(
    name: Annotated[
        list[str] | None,
        typer.Option("--name", "-n", help="Serve only this deployment (repeat for several); default: all."),
    ] = None,
    campaigns_dir: Annotated[
        Path | None,
        typer.Option(
            help="Read the deployments' campaign files from this folder; default: ./campaigns if "
            "present, else the examples shipped with the package."
        ),
    ] = None,
    credentials_block: Annotated[
        str, typer.Option(help="The DailyCredentials block the runs use.")
    ] = DEFAULT_BLOCK,
    limit: Annotated[
        int | None, typer.Option(help="Most flow runs this process runs at once; default: no limit.")
    ] = None,
    list_only: Annotated[
        bool, typer.Option("--list", help="Print the deployments that would be served, then exit.")
    ] = False,
) -> None:
    """Serve the campaign deployments (scheduled, ad hoc, event-triggered) from this process.

    Same deployments as `prefect deploy --all` with the prefect.yaml of `daily-sip init`; flow
    runs execute here, with this environment.
    """
    require_prefect_server("schedules, triggers and Daily events need a running Prefect server")
    from prefect.flows import aserve

    async def main() -> None:
        deployments = await build_deployments(name, campaigns_dir=campaigns_dir, block=credentials_block)
        for deployment in deployments:
            typer.echo(_describe(deployment))
        if list_only:
            return
        await aserve(*deployments, limit=limit)

    try:
        asyncio.run(main())
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:  # pragma: no cover
        pass
