"""``doctor --dial`` as a command: say what the far end must do, dial, write the fingerprint."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer


def dial_and_record(
    console,
    creds,
    dial,
    scenario,
    webhook_url,
    take_over,
    out: Path,
    port: int,
    max_seconds: float,
    hold_seconds: float,
    interval: float,
    log,
) -> list:
    from daily_sip.doctor.checks import Check
    from daily_sip.doctor.dial import SCENARIOS, DialSetupError
    from daily_sip.doctor.dial import dial as place_call
    from daily_sip.doctor.fingerprint import build

    if scenario:
        console.print(f"[bold]Far end, scenario {scenario}:[/bold] {SCENARIOS[scenario]}")
    try:
        rec = asyncio.run(
            place_call(
                creds,
                dial,
                scenario=scenario,
                webhook_url=webhook_url,
                take_over_webhook=take_over,
                listen_port=port,
                max_seconds=max_seconds,
                hold_seconds=hold_seconds,
                presence_interval=interval,
                log=log,
                say=console.print,
            )
        )
    except DialSetupError as exc:
        typer.echo(f"daily-sip doctor --dial: {exc}", err=True)
        raise typer.Exit(2) from None
    profile = build(rec, creds.api_url)
    out.write_text(json.dumps(profile, indent=2) + "\n", encoding="utf-8")
    seq = " → ".join(profile["observation"]["event_sequence"]) or "no webhook events"
    checks = [
        Check(
            "dial events",
            bool(rec.events),
            seq,
            "no event reached the listener: give --webhook-url a public URL that reaches --listen-port",
        ),
        Check("cleanup", not rec.cleanup_failed, "; ".join(rec.cleanup + rec.cleanup_failed)),
        Check("fingerprint", True, f"written to {out}: send it back as docs/first-contact.md says"),
    ]
    return checks
