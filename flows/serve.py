"""``daily-sip serve``: the deployments of ``deployments/prefect.yaml``, served without a work pool.

`prefect deploy` + a worker and ``daily-sip serve`` read the same file, so both give the same
deployment names, descriptions, tags, schedules, triggers, concurrency limits and parameters
(the campaign parameters come from the files under ``deployments/campaigns/``). What differs:
``serve`` registers the deployments without a work pool and runs their flow runs itself, in
subprocesses of this process, with this process's environment; it ignores the file's ``pull``
steps (the code is already here). Stop it with Ctrl-C; Prefect then pauses the schedules.

This module also holds the two deploy-time steps ``prefect.yaml`` calls in its ``build`` section
(Prefect runs any importable function as a step and templates its returned dict into the
deployment, ``{{ <step id>.<key> }}``):

* `project_directory` -> ``{"directory": <repository root>}``, for the ``pull`` step that sets a
  worker's working directory;
* `campaign_from_file` -> ``{"campaign": {...}, "room": ..., "name": ..., "path": ...}``: a campaign
  file read and validated like ``daily-sip validate``, so a bad file stops ``prefect deploy`` with
  the list of bad fields instead of producing a deployment whose runs all fail.

Heavy imports happen inside functions so that importing this module (the CLI, ``prefect deploy``
looking up a step) stays cheap.
"""

from __future__ import annotations

import asyncio
import os
from copy import deepcopy
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flows.prefect_api import require_prefect_server

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_PREFECT_FILE = PROJECT_DIR / "deployments" / "prefect.yaml"
FLOW_ENTRYPOINT = "flows/dial_campaign.py:dial_campaign"


# --------------------------------------------------------------------------- deploy-time steps


def project_directory() -> dict[str, str]:
    """Deployment step: the repository root (where ``flows/`` and ``tasks/`` live)."""
    return {"directory": str(PROJECT_DIR)}


def _resolve(path: str | Path) -> Path:
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p.resolve()
    return (PROJECT_DIR / p).resolve()  # `prefect deploy` run from elsewhere than the repo root


def campaign_from_file(path: str, require_room: bool = False) -> dict[str, Any]:
    """Deployment step: a campaign file as the flow's ``campaign`` parameter.

    Relative paths are taken from the current directory, else from the repository root.
    The campaign is validated; its value is the file's content as the model reads it
    (``model_dump(exclude_unset=True)``: what the file sets, normalised, defaults left out).
    """
    from flows.campaign import load_campaign

    resolved = _resolve(path)
    if not resolved.is_file():
        raise FileNotFoundError(f"campaign file {path} not found (looked for {resolved})")
    campaign = load_campaign(str(resolved))  # CampaignFileError lists every bad field
    if require_room and not campaign.room:
        raise ValueError(
            f"{resolved}: this deployment is tied to a room; set `room:` to the Daily room's name"
        )
    return {
        "campaign": campaign.model_dump(mode="json", exclude_unset=True),
        "room": campaign.room or "",
        "name": campaign.name,
        "path": str(resolved),
    }


# --------------------------------------------------------------------------- prefect.yaml -> deployments


def load_prefect_file(prefect_file: str | Path = DEFAULT_PREFECT_FILE) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load(Path(prefect_file).read_text())
    if not isinstance(data, dict) or not isinstance(data.get("deployments"), list):
        raise ValueError(f"{prefect_file}: no `deployments:` list")
    return data


async def resolve_deployments(
    prefect_file: str | Path = DEFAULT_PREFECT_FILE, names: list[str] | None = None
) -> list[dict[str, Any]]:
    """The file's deployments, templated the way ``prefect deploy`` templates them.

    Per deployment: run its ``build`` steps (or the file's), resolve ``{{ prefect.blocks.* }}``,
    ``{{ prefect.variables.* }}`` and ``{{ $ENV }}``, then apply the step outputs to everything
    except the trigger ``parameters`` (those are ``{{ event.* }}`` templates Prefect renders when
    an event fires). ``pull``/``push`` steps are not run: serving needs no code transfer.
    """
    from prefect.deployments.steps.core import run_steps
    from prefect.utilities.templating import (
        apply_values,
        resolve_block_document_references,
        resolve_variables,
    )

    data = load_prefect_file(prefect_file)
    wanted = set(names or [])
    known = {d.get("name") for d in data["deployments"]}
    if missing := wanted - known:
        raise ValueError(f"{prefect_file}: no deployment named {', '.join(sorted(missing))}")
    resolved = []
    for raw in data["deployments"]:
        if wanted and raw.get("name") not in wanted:
            continue
        config = deepcopy(raw)
        if config.get("entrypoint") != FLOW_ENTRYPOINT:
            raise ValueError(
                f"{prefect_file}: deployment {config.get('name')!r} has entrypoint "
                f"{config.get('entrypoint')!r}; `daily-sip serve` serves {FLOW_ENTRYPOINT} only"
            )
        steps = config.pop("build", data.get("build")) or []
        outputs = await run_steps(steps, {}, print_function=lambda *a, **k: None)
        config = await resolve_block_document_references(config)
        config = await resolve_variables(config)
        config = apply_values(config, dict(os.environ), remove_notset=False)
        triggers = config.pop("triggers", None) or []
        config = apply_values(config, outputs, warn_on_notset=True)
        config["triggers"] = []
        for spec in triggers:
            spec = dict(spec)
            parameters = spec.pop("parameters", None)
            spec = apply_values(spec, outputs, warn_on_notset=False)
            if parameters is not None:
                spec["parameters"] = parameters
            config["triggers"].append(spec)
        resolved.append(config)
    return resolved


def _schedule(spec: dict[str, Any]) -> Any:
    from datetime import datetime, timedelta

    from prefect.schedules import Cron, Interval, RRule

    common = {k: spec[k] for k in ("active", "parameters", "slug") if spec.get(k) is not None}
    if spec.get("cron"):
        extra = {"day_or": spec["day_or"]} if spec.get("day_or") is not None else {}
        return Cron(spec["cron"], timezone=spec.get("timezone"), **extra, **common)
    if spec.get("interval"):
        interval = spec["interval"]
        if isinstance(interval, int | float):
            interval = timedelta(seconds=interval)
        anchor = spec.get("anchor_date")
        if isinstance(anchor, str):
            anchor = datetime.fromisoformat(anchor)
        return Interval(interval, anchor_date=anchor, timezone=spec.get("timezone"), **common)
    if spec.get("rrule"):
        return RRule(spec["rrule"], timezone=spec.get("timezone"), **common)
    raise ValueError(f"unknown schedule {spec!r}: give cron, interval or rrule")


async def build_deployments(
    prefect_file: str | Path = DEFAULT_PREFECT_FILE, names: list[str] | None = None
) -> list[RunnerDeployment]:
    """RunnerDeployments of `flows.dial_campaign.dial_campaign`, one per deployment of the file."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.deployments.runner import EntrypointType
    from prefect.events import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    from flows.dial_campaign import dial_campaign

    trigger_adapter = TypeAdapter(DeploymentTriggerTypes)
    deployments = []
    for config in await resolve_deployments(prefect_file, names):
        name = config["name"]
        limit = config.get("concurrency_limit")
        if isinstance(limit, dict):
            limit = ConcurrencyLimitConfig(**limit)
        triggers = [
            trigger_adapter.validate_python({"name": f"{name}__automation_{i}", **spec})
            for i, spec in enumerate(config["triggers"], start=1)
        ]
        deployment = await dial_campaign.ato_deployment(
            name=name,
            description=config.get("description"),
            tags=config.get("tags"),
            version=config.get("version"),
            parameters=config.get("parameters") or {},
            schedules=[_schedule(s) for s in config.get("schedules") or []],
            triggers=triggers,
            concurrency_limit=limit,
            paused=config.get("paused"),
            enforce_parameter_schema=config.get("enforce_parameter_schema", True),
            # `python -m prefect.engine` imports flows.dial_campaign from the installed package,
            # whatever the working directory of `serve` is.
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
        deployments.append(deployment)
    return deployments


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
        parts.append(f"at most {deployment.concurrency_limit} at once"
                     + (f" ({getattr(strategy, 'value', strategy)})" if strategy else ""))
    return f"{deployment.flow_name}/{deployment.name}: " + ("; ".join(parts) or "ad hoc runs only")


def serve(
    prefect_file: Annotated[Path, typer.Option(
        help="The prefect.yaml whose deployments to serve.")] = DEFAULT_PREFECT_FILE,
    name: Annotated[list[str] | None, typer.Option(
        "--name", "-n", help="Serve only this deployment (repeat for several); default: all.")] = None,
    limit: Annotated[int | None, typer.Option(
        help="Most flow runs this process runs at once; default: no limit.")] = None,
    list_only: Annotated[bool, typer.Option(
        "--list", help="Print the deployments that would be served, then exit.")] = False,
) -> None:
    """Serve the campaign deployments of deployments/prefect.yaml from this process (no work pool).

    Same names, schedules, triggers, concurrency limits and parameters as `prefect deploy --all
    --prefect-file deployments/prefect.yaml`; flow runs execute here, with this environment.
    """
    require_prefect_server("schedules, triggers and Daily events need a running Prefect server")
    from prefect.flows import aserve

    async def main() -> None:
        deployments = await build_deployments(prefect_file, name)
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


if __name__ == "__main__":  # pragma: no cover
    typer.run(serve)
