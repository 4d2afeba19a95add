"""``daily-sip``: the command line. Imports happen inside commands so each one starts fast."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from daily_sip.deployments.serve import serve
from daily_sip.deployments.setup import setup
from daily_sip.deployments.starter import init
from daily_sip.dev_stack import Stop, dev, sigterm_stops
from daily_sip.prefect_server import require_prefect_server
from daily_sip.receiver import receiver
from daily_sip.standin.cli import emulator

app = typer.Typer(
    name="daily-sip",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # one line unless --debug; see main()
)
app.command("emulator", help="Run the offline Daily stand-in (rooms, SIP, dial-out, webhooks).")(emulator)
app.command("receiver", help="Run the webhook receiver: Daily webhooks in, Prefect events out.")(receiver)
app.command("setup")(setup)
app.command("serve")(serve)
app.command("init")(init)
app.command("dev")(dev)


@app.callback()
def _options(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="Show the full traceback of an unexpected error (also accepted after the command).",
        ),
    ] = False,
) -> None:
    """Put a Daily room onto many SIP bridges with Prefect, against Daily or its offline stand-in.

    Exit codes: 0 done (the campaign's success rule held); 1 the campaign ran but did not succeed,
    or an unexpected error; 2 bad input or setup (campaign file, Daily key or URL, Prefect server).
    """


def _load_or_exit(campaign_file: Path):
    from daily_sip.flows.campaign.model import CampaignFileError, load_campaign

    try:
        return load_campaign(str(campaign_file))
    except CampaignFileError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def _check_daily_or_exit(credentials_block: str | None, webhook_url: str | None = None) -> None:
    """Credentials found and accepted by one cheap call, and the webhook not someone else's,
    or one line and exit 2."""
    from daily_sip.flows.provision.preflight import PreflightError, credentials_or_explain, preflight
    from daily_sip.tasks.webhooks import WebhookOwnedElsewhere, afind_foreign_webhook

    async def check() -> None:
        creds = await credentials_or_explain(credentials_block)
        await preflight(creds)
        if webhook_url and (hook := await afind_foreign_webhook(webhook_url, credentials=creds)):
            raise WebhookOwnedElsewhere(hook, webhook_url)

    try:
        asyncio.run(check())
    except PreflightError as exc:
        typer.echo(f"Daily API check failed: {exc}", err=True)
        raise typer.Exit(2) from None
    except WebhookOwnedElsewhere as exc:
        typer.echo(f"daily-sip: {exc}", err=True)
        raise typer.Exit(2) from None


# `daily-sip run`'s exit code when the run could not turn off everything it turned on (the
# sweeper finishes it): distinct from a campaign whose bridges did not answer (1).
CLEANUP_PENDING_EXIT = 3

JsonOut = Annotated[Path | None, typer.Option(help="Also write the report as JSON to this file.")]


async def _run_flow(campaign, credentials_block: str | None, webhook_url: str | None):
    from daily_sip.flows.dial_campaign import dial_campaign

    state = await dial_campaign(
        campaign=campaign,
        credentials_block=credentials_block or "",
        webhook_url=webhook_url or "",
        return_state=True,
    )
    report = await state.aresult(raise_on_failure=False)
    return state, report


def _finish(state, report, json_out: Path | None, ui_url: str | None) -> int:
    from rich.console import Console

    from daily_sip.flows.report.escape import plain
    from daily_sip.flows.report.model import CampaignReport
    from daily_sip.terminal import results_table

    if not isinstance(report, CampaignReport):
        typer.echo(plain(f"Flow run ended {state.type.value}: {state.message or report}"), err=True)
        return 1
    typer.echo("")
    console = Console()
    # A terminal gets its own width; a pipe or a file (CI logs) gets 120 columns, not rich's 80.
    (console if console.is_terminal else Console(width=120)).print(results_table(report))
    # Daily's error texts are in the message: no control characters reach the terminal.
    typer.echo(plain(f"{state.type.value}: {report.message}"))
    typer.echo(plain(f"Success rule: {report.rule}"))
    typer.echo(plain(f"Cleanup: {'; '.join(report.cleanup) or 'nothing to clean up'}"))
    if report.cleanup_pending:
        pending = "; ".join(report.cleanup_pending)
        typer.echo(plain(f"Cleanup still pending (the sweeper will finish it): {pending}"))
    if ui_url and report.flow_run_id:
        typer.echo(f"Prefect UI: {ui_url}/runs/flow-run/{report.flow_run_id}")
    if json_out:
        json_out.write_text(report.model_dump_json(indent=2))
        typer.echo(f"Report written to {json_out}")
        _timeline_file(report, json_out)
    if report.cleanup_pending:
        return CLEANUP_PENDING_EXIT
    return 0 if state.is_completed() else 1


def _timeline_file(report, json_out: Path) -> None:
    """The timeline picture next to the JSON report, when matplotlib (the timeline extra) is there."""
    from daily_sip.flows.report.timeline import render_png

    if not any(report.timeline):
        return
    png = json_out.with_name(json_out.stem + ".timeline.png")
    try:
        render_png(report, png)
    except ImportError:
        typer.echo("Timeline picture: pip install 'daily-sip-flows[timeline]' (matplotlib) to get one")
        return
    typer.echo(f"Timeline picture written to {png}")


def _ui_url() -> str | None:
    from prefect.settings import get_current_settings

    api = get_current_settings().api.url or ""
    return api.removesuffix("/api") if api.startswith("http") else None


@app.command()
def validate(campaign_file: Path) -> None:
    """Check a campaign file without calling anything; lists every bad field."""
    campaign = _load_or_exit(campaign_file)
    n = len(campaign.targets)
    typer.echo(f"{campaign_file}: OK, {n} target(s), up to {campaign.leg_capacity} at once")


@app.command()
def run(
    campaign_file: Path,
    json_out: JsonOut = None,
    credentials_block: Annotated[
        str | None, typer.Option(help="Saved DailyCredentials block; default: DAILY_API_KEY / DAILY_API_URL.")
    ] = None,
    webhook_url: Annotated[
        str | None, typer.Option(help="Point the domain's Daily webhook at this receiver URL first.")
    ] = None,
    ui_link: Annotated[bool, typer.Option(hidden=True)] = True,
) -> None:
    """Run the dial-campaign flow on a campaign file (YAML or JSON, same schema as the flow parameter)."""
    campaign = _load_or_exit(campaign_file)
    require_prefect_server(
        "the campaign learns outcomes from the receiver's Prefect events, which need a running "
        "Prefect server (ephemeral mode cannot carry them between processes)",
        ", or try `daily-sip demo`",
    )
    _check_daily_or_exit(credentials_block, webhook_url)
    from rich.console import Console

    from daily_sip.terminal import live_board

    with live_board(Console(stderr=True)):
        state, report = asyncio.run(_run_flow(campaign, credentials_block, webhook_url))
    raise typer.Exit(_finish(state, report, json_out, _ui_url() if ui_link else None))


@app.command()
def demo(
    json_out: JsonOut = None,
    campaign_file: Annotated[
        Path | None,
        typer.Option(help="Campaign to run; default: the demo campaign shipped with the package."),
    ] = None,
    keep: Annotated[bool, typer.Option(help="Leave the servers running afterwards (Ctrl-C stops).")] = False,
) -> None:
    """Start what the embedded default needs, run the demo campaign, print the results, stop it all."""
    import time

    from daily_sip.deployments import CAMPAIGNS_DIR
    from daily_sip.local_stack import STANDIN_DEV_KEY, LocalStack, new_webhook_secret

    t0 = time.monotonic()
    campaign_file = campaign_file or CAMPAIGNS_DIR / "demo.yaml"
    campaign = _load_or_exit(campaign_file)
    started_server = False
    with sigterm_stops(), LocalStack() as stack:  # SIGTERM stops everything, as Ctrl-C does
        if not os.environ.get("PREFECT_API_URL"):
            started_server = True
            # Ephemeral Prefect cannot carry the receiver's events into this process: use a server.
            typer.echo("Starting a local Prefect server (SQLite under .prefect-demo/) ...")
            api_url, _, secs = stack.prefect_server()
            os.environ["PREFECT_API_URL"] = api_url
            typer.echo(f"  Prefect API {api_url} healthy after {secs:.1f} s")
        secret = new_webhook_secret()
        # Daily's documented behaviour otherwise (presence 15 s behind, idle default 0); the far end
        # that never answers rings for the stand-in's 30 s, past the campaign's ring timeout.
        daily_url = stack.standin(connect_delay=0.5, answer_delay=1.0, hangup_after=2)
        webhook_url = stack.receiver(secret, os.environ["PREFECT_API_URL"])
        pacer_url = stack.pacer()  # keeps Daily's rate limits as a fleet of workers would
        typer.echo(
            f"Daily stand-in {daily_url} (key {STANDIN_DEV_KEY}); webhook receiver {webhook_url}; "
            f"pacer {pacer_url}"
        )
        env = {
            **os.environ,
            "DAILY_API_KEY": STANDIN_DEV_KEY,
            "DAILY_API_URL": daily_url,
            "DAILY_WEBHOOK_SECRET": secret,
            "DAILY_PACER_URL": pacer_url,
        }
        typer.echo(f"Dialing {len(campaign.targets)} bridges from campaign {campaign.name!r} ...")
        # A child process, so Prefect reads PREFECT_API_URL at import like any `daily-sip run`.
        cmd = [sys.executable, "-m", "daily_sip.cli", "run", str(campaign_file), "--webhook-url", webhook_url]
        if json_out:
            cmd += ["--json-out", str(json_out)]
        if started_server and not keep:
            cmd += ["--no-ui-link"]  # the server stops with the demo; a link to it would be dead
        code = subprocess.run(cmd, env=env, check=False).returncode
        typer.echo(f"Demo took {time.monotonic() - t0:.1f} s in all.")
        if started_server and not keep:
            typer.echo("Stopping the servers (--keep leaves them running to browse the run in the UI).")
        if keep:
            typer.echo("Servers left running; Ctrl-C (or SIGTERM) stops them.")
            try:
                while True:
                    time.sleep(3600)
            except (KeyboardInterrupt, Stop):
                pass
    raise typer.Exit(code)


@app.command()
def report(
    run: Annotated[str, typer.Argument(help="Flow run id (or name) of a campaign run.")],
) -> None:
    """Print a past (or running) campaign run's report from Prefect: state, results, summary."""
    from rich.console import Console

    from daily_sip.terminal import RunNotFound, past_run, print_past_run

    require_prefect_server("the report is read from the Prefect server that ran the campaign")
    try:
        flow_run, artifacts = asyncio.run(past_run(run))
    except RunNotFound:
        typer.echo(
            f"no flow run {run!r} on this Prefect server; copy its id from the UI or `prefect flow-run ls`",
            err=True,
        )
        raise typer.Exit(2) from None
    # As wide as the terminal (or $COLUMNS): the tables fit it, one line per bridge.
    print_past_run(Console(), flow_run, artifacts)


@app.command()
def sweep(
    grace_seconds: Annotated[
        float,
        typer.Option(help="A running campaign whose ledger was not refreshed for this long counts as dead."),
    ] = 60.0,
    every: Annotated[
        float | None,
        typer.Option(
            help="Sweep every this many seconds until Ctrl-C, with a 45 s grace (what each "
            "`daily-sip worker` does; for fleets of `process` workers).",
            min=5,
        ),
    ] = None,
) -> None:
    """Finish the cleanup of campaign runs that died or gave up (the sweep-ledgers flow, once)."""
    require_prefect_server("cleanup ledgers are Prefect variables on the Prefect server")
    from daily_sip.flows.sweeper import RESIDENT_GRACE_SECONDS, resident_sweep, sweep_ledgers

    if every is not None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(resident_sweep(every, RESIDENT_GRACE_SECONDS))
        raise typer.Exit(0)

    report = asyncio.run(sweep_ledgers(grace_seconds=grace_seconds))
    typer.echo(
        f"swept {len(report.finished)} run(s); {len(report.pending)} still pending; "
        f"{len(report.live)} live run(s) left alone; {len(report.busy)} in a room in use"
    )
    for run_id, pending in report.pending.items():
        typer.echo(f"  {run_id}: still pending: {'; '.join(pending)}", err=True)
    raise typer.Exit(1 if report.pending else 0)


@app.command()
def doctor(
    credentials_block: Annotated[
        str | None, typer.Option(help="Saved DailyCredentials block; default: DAILY_API_KEY / DAILY_API_URL.")
    ] = None,
    webhook_url: Annotated[
        str | None,
        typer.Option(
            help="The receiver's public URL to check (default: the domain webhook's URL); "
            "with --dial: where Daily should send the events (default: the listener's own URL)."
        ),
    ] = None,
    dial: Annotated[
        str | None, typer.Option(help="Place ONE real dial-out to this SIP URI (one you own) and record it.")
    ] = None,
    scenario: Annotated[
        str | None, typer.Option(help="What the far end of --dial will do: busy, no-answer, answer-hangup.")
    ] = None,
    fingerprint_out: Annotated[
        Path, typer.Option(help="Where --dial writes its fingerprint (a telephony profile, redacted).")
    ] = Path("daily-fingerprint.json"),
    listen_port: Annotated[
        int, typer.Option(help="Port of --dial's webhook listener (0: any free one).")
    ] = 0,
    take_over_webhook: Annotated[
        bool,
        typer.Option(help="Let --dial repoint a webhook that points elsewhere (it is pointed back after)."),
    ] = False,
    max_seconds: Annotated[float, typer.Option(help="--dial stops the call after this long.", min=1)] = 90.0,
    hold_seconds: Annotated[
        float, typer.Option(help="--dial hangs up this long after an answer.", min=0)
    ] = 10.0,
    presence_interval: Annotated[float, typer.Option(help="Seconds between presence polls.", min=0.2)] = 2.0,
) -> None:
    """Check a Daily account (key, domain, dial-out, SIP, webhook, receiver, rate limits); dials nothing
    unless --dial is given. Exit code 1 when any check is red, 2 for bad input."""
    from daily_sip.doctor.command import run_doctor

    code = run_doctor(
        credentials_block,
        webhook_url=webhook_url,
        dial=dial,
        scenario=scenario,
        fingerprint_out=fingerprint_out,
        listen_port=listen_port,
        take_over_webhook=take_over_webhook,
        max_seconds=max_seconds,
        hold_seconds=hold_seconds,
        presence_interval=presence_interval,
    )
    raise typer.Exit(code)


class RunLogLevel(StrEnum):
    warning = "warning"
    info = "info"
    debug = "debug"


@app.command()
def worker(
    pool: Annotated[
        str, typer.Option("--pool", "-p", help="Work pool to take runs from (created if missing).")
    ],
    limit: Annotated[
        int | None,
        typer.Option(
            help="Campaigns this worker takes at once that have not yet started their calls; one that "
            "has frees its place while it holds them (default: 10; 0 = no limit).",
            min=0,
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Worker name shown in the Prefect UI.")] = None,
    starts_per_second: Annotated[
        float,
        typer.Option(
            help="Campaigns started per second at most (0 = no limit); a burst of starts stalls the "
            "process's running campaigns.",
            min=0,
        ),
    ] = 2.0,
    run_logs: Annotated[
        RunLogLevel,
        typer.Option(
            help="Lowest level of the campaigns' log lines printed here (all of them are in the Prefect UI)."
        ),
    ] = RunLogLevel.warning,
) -> None:
    """Run campaigns of a work pool inside this one process (many campaigns share it).

    A `process` worker (`prefect worker start`) starts a Python process per campaign; this one
    runs them as tasks of one process, sharing imports, API clients and one Daily event
    subscription, so one machine carries far more campaigns at once. If it dies, the sweeper
    finishes its campaigns' cleanup. SIGTERM / Ctrl-C: every running campaign cleans up and
    reports, then the worker exits.
    """
    import logging

    require_prefect_server("a worker takes its runs from the Prefect server")
    from daily_sip.worker import DEFAULT_LIMIT, WORKER_TYPE, serve_worker

    existing = asyncio.run(_pool_type(pool))
    if existing not in (None, WORKER_TYPE):
        typer.echo(
            f"daily-sip: work pool {pool!r} is a {existing!r} pool; this worker needs a "
            f"{WORKER_TYPE!r} pool: give a new pool name (it is created) or use "
            f"`prefect worker start --pool {pool}`",
            err=True,
        )
        raise typer.Exit(2)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("daily_sip").setLevel(logging.INFO)
    places = "any number of" if limit == 0 else f"up to {limit or DEFAULT_LIMIT}"
    typer.echo(
        f"daily-sip worker: pool {pool!r} (type {WORKER_TYPE}), "
        f"{places} campaigns starting their calls at once; Ctrl-C stops"
    )
    from daily_sip.worker import print_run_logs_from

    print_run_logs_from(getattr(logging, run_logs.value.upper()))
    serve_worker(pool, name=name, limit=limit, starts_per_second=starts_per_second)


async def _pool_type(pool: str) -> str | None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    async with get_client() as client:
        try:
            return (await client.read_work_pool(pool)).type
        except ObjectNotFound:
            return None


def main() -> None:
    """Entry point of the ``daily-sip`` console script.

    An unexpected error is one line naming it; ``--debug`` anywhere on the line shows the traceback.
    """
    debug = "--debug" in sys.argv[1:]
    if debug:
        sys.argv.remove("--debug")
    try:
        app(prog_name="daily-sip")
    except Stop:  # SIGTERM during `demo`: its with-blocks have stopped what it started
        typer.echo("daily-sip: stopped by SIGTERM; everything it started is stopped.", err=True)
        sys.exit(143)
    except Exception as exc:
        if debug:
            raise
        text = " ".join(str(exc).split()) or "no detail"
        typer.echo(
            f"daily-sip: {type(exc).__name__}: {text} (run again with --debug for the traceback)", err=True
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
