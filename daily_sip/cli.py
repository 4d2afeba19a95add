"""``daily-sip``: the command line. Imports happen inside commands so each one starts fast."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from daily_sip.deployments.serve import serve
from daily_sip.deployments.setup import setup
from daily_sip.deployments.starter import init
from daily_sip.prefect_server import require_prefect_server
from daily_sip.receiver import receiver
from daily_sip.standin.cli import emulator

app = typer.Typer(
    name="daily-sip",
    help="Put a Daily room onto many SIP bridges with Prefect, against Daily or its offline stand-in.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("emulator", help="Run the offline Daily stand-in (rooms, SIP, dial-out, webhooks).")(emulator)
app.command("receiver", help="Run the webhook receiver: Daily webhooks in, Prefect events out.")(receiver)
app.command("setup")(setup)
app.command("serve")(serve)
app.command("init")(init)

JsonOut = Annotated[Path | None, typer.Option(help="Also write the report as JSON to this file.")]


async def _run_flow(campaign, credentials_block: str | None, webhook_url: str | None):
    from daily_sip.flows.dial_campaign import dial_campaign

    state = await dial_campaign(
        campaign=campaign, credentials_block=credentials_block, webhook_url=webhook_url, return_state=True
    )
    report = await state.aresult(raise_on_failure=False)
    return state, report


def _finish(state, report, json_out: Path | None, ui_url: str | None) -> int:
    from daily_sip.flows.report import CampaignReport

    if not isinstance(report, CampaignReport):
        typer.echo(f"Flow run ended {state.type.value}: {state.message or report}", err=True)
        return 1
    typer.echo("")
    typer.echo(report.table())
    typer.echo("")
    typer.echo(f"{state.type.value}: {report.message}")
    typer.echo(f"Cleanup: {'; '.join(report.cleanup) or 'nothing to clean up'}")
    if report.cleanup_pending:
        typer.echo(f"Cleanup still pending (the sweeper will finish it): {'; '.join(report.cleanup_pending)}")
    if ui_url and report.flow_run_id:
        typer.echo(f"Prefect UI: {ui_url}/runs/flow-run/{report.flow_run_id}")
    if json_out:
        json_out.write_text(report.model_dump_json(indent=2))
        typer.echo(f"Report written to {json_out}")
    return 0 if state.is_completed() else 1


def _ui_url() -> str | None:
    from prefect.settings import get_current_settings

    api = get_current_settings().api.url or ""
    return api.removesuffix("/api") if api.startswith("http") else None


@app.command()
def validate(campaign_file: Path) -> None:
    """Check a campaign file without calling anything; lists every bad field."""
    from daily_sip.flows.campaign import CampaignFileError, load_campaign

    try:
        campaign = load_campaign(str(campaign_file))
    except CampaignFileError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    n = len(campaign.targets)
    typer.echo(f"{campaign_file}: OK, {n} target(s), up to {campaign.leg_capacity} at once")


@app.command()
def run(
    campaign_file: Path,
    json_out: JsonOut = None,
    credentials_block: Annotated[str | None, typer.Option(
        help="Saved DailyCredentials block; default: DAILY_API_KEY / DAILY_API_URL.")] = None,
    webhook_url: Annotated[str | None, typer.Option(
        help="Point the domain's Daily webhook at this receiver URL first.")] = None,
) -> None:
    """Run the dial-campaign flow on a campaign file (YAML or JSON, same schema as the flow parameter)."""
    from daily_sip.flows.campaign import CampaignFileError, load_campaign

    try:
        campaign = load_campaign(str(campaign_file))
    except CampaignFileError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    require_prefect_server(
        "the campaign learns outcomes from the receiver's Prefect events, which need a running "
        "Prefect server (ephemeral mode cannot carry them between processes)",
        ", or try `daily-sip demo`",
    )
    state, report = asyncio.run(_run_flow(campaign, credentials_block, webhook_url))
    raise typer.Exit(_finish(state, report, json_out, _ui_url()))


@app.command()
def demo(
    json_out: JsonOut = None,
    campaign_file: Annotated[Path | None, typer.Option(
        help="Campaign to run; default: the demo campaign shipped with the package.")] = None,
    keep: Annotated[bool, typer.Option(help="Leave the servers running afterwards (Ctrl-C stops).")] = False,
) -> None:
    """Start what the embedded default needs, run the demo campaign, print the results, stop it all."""
    import time

    from daily_sip.deployments import CAMPAIGNS_DIR
    from daily_sip.flows.campaign import CampaignFileError, load_campaign
    from daily_sip.local_stack import STANDIN_DEV_KEY, LocalStack, new_webhook_secret

    t0 = time.monotonic()
    campaign_file = campaign_file or CAMPAIGNS_DIR / "demo.yaml"
    try:
        campaign = load_campaign(str(campaign_file))
    except CampaignFileError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    with LocalStack() as stack:
        if not os.environ.get("PREFECT_API_URL"):
            # Ephemeral Prefect cannot carry the receiver's events into this process: use a server.
            typer.echo("Starting a local Prefect server (SQLite under .prefect-demo/) ...")
            api_url, _, secs = stack.prefect_server()
            os.environ["PREFECT_API_URL"] = api_url
            typer.echo(f"  Prefect API {api_url} healthy after {secs:.1f} s")
        secret = new_webhook_secret()
        daily_url = stack.standin(connect_delay=0.5, answer_delay=1.0, ring_timeout=6, hangup_after=2)
        webhook_url = stack.receiver(secret, os.environ["PREFECT_API_URL"])
        typer.echo(f"Daily stand-in {daily_url} (key {STANDIN_DEV_KEY}); webhook receiver {webhook_url}")
        env = {**os.environ, "DAILY_API_KEY": STANDIN_DEV_KEY, "DAILY_API_URL": daily_url,
               "DAILY_WEBHOOK_SECRET": secret}
        typer.echo(f"Dialing {len(campaign.targets)} bridges from campaign {campaign.name!r} ...")
        # A child process, so Prefect reads PREFECT_API_URL at import like any `daily-sip run`.
        cmd = [sys.executable, "-m", "daily_sip.cli", "run", str(campaign_file), "--webhook-url", webhook_url]
        if json_out:
            cmd += ["--json-out", str(json_out)]
        code = subprocess.run(cmd, env=env, check=False).returncode
        typer.echo(f"Demo took {time.monotonic() - t0:.1f} s in all.")
        if keep:
            typer.echo("Servers left running; Ctrl-C to stop them.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    raise typer.Exit(code)


@app.command()
def sweep(
    grace_seconds: Annotated[float, typer.Option(
        help="A running campaign whose ledger was not refreshed for this long counts as dead.")] = 60.0,
) -> None:
    """Finish the cleanup of campaign runs that died or gave up (the sweep-ledgers flow, once)."""
    require_prefect_server("cleanup ledgers are Prefect variables on the Prefect server")
    from daily_sip.flows.sweeper import sweep_ledgers

    report = asyncio.run(sweep_ledgers(grace_seconds=grace_seconds))
    typer.echo(f"swept {len(report.finished)} run(s); {len(report.pending)} still pending; "
               f"{len(report.live)} live run(s) left alone; {len(report.busy)} in a room in use")
    for run_id, pending in report.pending.items():
        typer.echo(f"  {run_id}: still pending: {'; '.join(pending)}", err=True)
    raise typer.Exit(1 if report.pending else 0)


@app.command("setup-limits")
def setup_limits() -> None:
    """Create Daily's rate limits as Prefect global concurrency limits on the current Prefect server."""
    from daily_sip.tasks.ratelimit import RATE_CLASSES, ensure_rate_limits, rate_scale, shared_limit

    names = asyncio.run(ensure_rate_limits())
    for rate, name in zip(RATE_CLASSES, names, strict=True):
        limit, decay = shared_limit(rate, rate_scale())
        typer.echo(f"{name}: limit {limit}, slot decay {decay:g}/s  (Daily: {rate.allowance})")


def main() -> None:
    """Entry point of the ``daily-sip`` console script."""
    app(prog_name="daily-sip")


if __name__ == "__main__":
    main()
