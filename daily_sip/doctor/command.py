"""``daily-sip doctor`` behind its options: input checked first, then the checks, then ``--dial``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer
from rich.console import Console

from daily_sip.tasks import DailyCredentials

from .checks import Check, diagnose, is_private
from .dial import SCENARIOS, DialSetupError, dial
from .fingerprint import build, raw
from .report import print_checks
from .wire import WireLog


def _input_error(dial_to: str | None, scenario: str | None) -> str | None:
    if scenario is not None and scenario not in SCENARIOS:
        return f"--scenario: {scenario!r} is not one of {', '.join(SCENARIOS)}"
    if dial_to is not None and not dial_to.startswith("sip:"):
        return f"--dial: {dial_to!r} is not a SIP URI; give one you own, e.g. sip:me@pbx.example.com"
    return None


def run_doctor(
    credentials_block: str | None,
    *,
    webhook_url: str | None,
    dial: str | None,
    scenario: str | None,
    fingerprint_out: Path,
    listen_port: int,
    take_over_webhook: bool,
    max_seconds: float,
    hold_seconds: float,
    presence_interval: float,
) -> int:
    """The report on stdout; returns the exit code: 0 all green, 1 any red, 2 bad input (one line on
    stderr, before anything is touched)."""
    from daily_sip.flows.provision.preflight import PreflightError, credentials_or_explain

    problem = _input_error(dial, scenario)
    if problem is None:
        try:
            creds = asyncio.run(credentials_or_explain(credentials_block))
        except PreflightError as exc:
            problem = f"daily-sip doctor: {exc}"
    if problem is None and dial is not None and webhook_url is None and not is_private(creds.api_url):
        problem = (
            f"--dial: {creds.api_url} cannot send webhooks to this machine's listener on 127.0.0.1: "
            "give --webhook-url https://<public URL>/webhook that forwards to --listen-port "
            "(docs/first-contact.md)"
        )
    if problem is not None:
        typer.echo(problem, err=True)
        return 2
    console = Console(highlight=False, soft_wrap=True)  # one line per check, also in a pipe
    log = WireLog()
    findings = asyncio.run(diagnose(creds, webhook_url, log))
    print_checks(console, findings.checks)
    if dial is None:
        if scenario:
            console.print(f"--scenario {scenario}: {SCENARIOS[scenario]} (only with --dial)")
        return 0 if findings.ok else 1
    if not all(c.ok for c in findings.checks if c.name in ("key and URL", "dial-out")):
        typer.echo("daily-sip doctor: --dial skipped: fix the red checks above first", err=True)
        return 1
    checks = dial_and_record(
        console,
        creds,
        dial,
        scenario=scenario,
        webhook_url=webhook_url,
        take_over_webhook=take_over_webhook,
        fingerprint_out=fingerprint_out,
        listen_port=listen_port,
        max_seconds=max_seconds,
        hold_seconds=hold_seconds,
        presence_interval=presence_interval,
        log=log,
    )
    print_checks(console, checks)
    return 0 if findings.ok and all(c.ok for c in checks) else 1


def dial_and_record(
    console: Console,
    creds: DailyCredentials,
    destination: str,
    *,
    scenario: str | None,
    webhook_url: str | None,
    take_over_webhook: bool,
    fingerprint_out: Path,
    listen_port: int,
    max_seconds: float,
    hold_seconds: float,
    presence_interval: float,
    log: WireLog,
) -> list[Check]:
    """One recorded dial-out; the checks it adds to the report. Bad setup: one line, exit 2."""
    if scenario:
        console.print(f"[bold]Far end, scenario {scenario}:[/bold] {SCENARIOS[scenario]}")
    try:
        rec = asyncio.run(
            dial(
                creds,
                destination,
                scenario=scenario,
                webhook_url=webhook_url,
                take_over_webhook=take_over_webhook,
                listen_port=listen_port,
                max_seconds=max_seconds,
                hold_seconds=hold_seconds,
                presence_interval=presence_interval,
                log=log,
                say=console.print,
            )
        )
    except DialSetupError as exc:
        typer.echo(f"daily-sip doctor --dial: {exc}", err=True)
        raise typer.Exit(2) from None
    profile = build(rec, creds.api_url)
    fingerprint_out.write_text(json.dumps(profile, indent=2) + "\n", encoding="utf-8")
    raw_out = fingerprint_out.with_name(fingerprint_out.stem + ".raw.json")
    raw_out.write_text(json.dumps(raw(rec), indent=2) + "\n", encoding="utf-8")
    sequence = " → ".join(profile["observation"]["event_sequence"]) or "no webhook event for the call"
    return [
        Check(
            "dial events",
            bool(rec.events),
            sequence,
            "no event reached the listener: give --webhook-url a public URL that forwards to --listen-port",
        ),
        Check(
            "cleanup",
            not rec.cleanup_failed,
            "; ".join(rec.cleanup + rec.cleanup_failed),
            "see above what is left and where to remove it",
        ),
        Check(
            "fingerprint",
            True,
            f"written to {fingerprint_out}, redacted: send it back as docs/first-contact.md says; "
            f"everything unredacted, for you only: {raw_out}",
        ),
    ]
