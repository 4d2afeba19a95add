"""``daily-sip dev``: the whole local walkthrough in one command, stopped by Ctrl-C or SIGTERM.

Starts a Prefect server (SQLite under ``.prefect-dev/``), the Daily stand-in, the webhook receiver,
runs ``daily-sip setup`` and ``prefect deploy --all`` on a starter folder (``daily-sip init``), and
starts a ``prefect worker``; prints what is where and how to fire each deployment, then waits.
Everything it started is stopped on exit, however it exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import httpx
import typer

from daily_sip.local_stack import STANDIN_DEV_KEY, LocalStack, new_webhook_secret
from daily_sip.terminal import command


class Stop(Exception):
    """SIGTERM arrived: leave the with-blocks so that everything is stopped."""


@contextlib.contextmanager
def sigterm_stops() -> Iterator[None]:
    """Turn SIGTERM into an exception for the body (Ctrl-C already is one), then restore it."""

    def on_term(signum: int, frame: object) -> None:
        raise Stop

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _bin(name: str) -> str:
    exe = Path(sys.executable).with_name(name)
    return str(exe) if exe.exists() else name


def _step(what: str, cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{what} failed (exit {done.returncode}): {tail[0]}")


def dev(
    workdir: Annotated[
        Path, typer.Option(help="Where the server's database, logs and the deployments folder go.")
    ] = Path(".prefect-dev"),
    port: Annotated[int, typer.Option(help="Prefect server port (the next free one if taken).")] = 4200,
) -> None:
    """Start Prefect server, stand-in, receiver and a worker; set up and deploy; Ctrl-C stops all."""
    t0 = time.monotonic()
    stack = LocalStack(workdir=workdir)
    try:
        with sigterm_stops(), stack:
            typer.echo("Starting a Prefect server ...")
            api_url, ui_url, _ = stack.prefect_server(port)
            env = {**os.environ, "PREFECT_API_URL": api_url, "DAILY_API_KEY": STANDIN_DEV_KEY}
            daily_url = stack.standin()
            secret = new_webhook_secret()
            webhook_url = stack.receiver(secret, api_url, spool=True)
            pacer_url = stack.pacer()  # the production topology: one pacer, every worker uses it
            env.update(DAILY_API_URL=daily_url, DAILY_WEBHOOK_SECRET=secret, DAILY_PACER_URL=pacer_url)
            typer.echo("Setting up (credentials block, work pool; pacer checked) and deploying ...")
            _step("daily-sip setup", [_bin("daily-sip"), "setup", "--webhook-url", webhook_url], env)
            project = workdir / "deployments"
            _step("daily-sip init", [_bin("daily-sip"), "init", str(project)], env)
            _step("prefect deploy", [_bin("prefect"), "--no-prompt", "deploy", "--all"], env, cwd=project)
            # The room the standup-meeting deployment borrows, so its trigger can be tried offline.
            httpx.post(
                f"{daily_url}/rooms",
                json={"name": "standup"},
                timeout=10,
                headers={"Authorization": f"Bearer {STANDIN_DEV_KEY}"},
            )
            worker_env = {k: v for k, v in env.items() if k not in ("DAILY_API_KEY", "DAILY_API_URL")}
            stack.worker("daily-sip", worker_env)
            # Printed commands name this install's scripts (`.venv/bin/prefect` from the repository
            # root): they run as shown in another terminal too, where the venv is not activated.
            prefect, daily_sip = command("prefect"), command("daily-sip")
            typer.echo(f"""
Ready in {time.monotonic() - t0:.0f} s. Logs in {workdir}/ .
  Prefect UI        {ui_url}
  Prefect API       {api_url}
  Daily stand-in    {daily_url}   (key {STANDIN_DEV_KEY})
  Webhook receiver  {webhook_url}   (spool in {workdir}/receiver-spool)
  Pacer             {pacer_url}   (DAILY_PACER_URL of the worker)
  Worker            a Prefect process worker, pool daily-sip
  Deployments       {project}/prefect.yaml
Try, in another terminal in this folder:
  export PREFECT_API_URL={api_url}
  {prefect} deployment run dial-campaign/adhoc --watch \\
      --param campaign='{{"targets": [{{"sip_uri": "sip:bridge@example.com"}}]}}'
  {prefect} event emit daily.meeting.started --resource-id daily.room.standup      # standup-meeting
  {prefect} event emit daily.campaign.requested --resource-id daily.campaign.try \\
      --payload '{{"campaign": {{"targets": [{{"sip_uri": "sip:busy@example.com"}}]}}}}'  # on-request
  {daily_sip} report <flow run id or name>
Ctrl-C (or SIGTERM) stops everything.""")
            while True:
                time.sleep(3600)
    except (KeyboardInterrupt, Stop):
        typer.echo("Stopped everything.")
    except RuntimeError as exc:
        typer.echo(f"daily-sip dev: {exc}; logs in {workdir}/", err=True)
        raise typer.Exit(1) from None
