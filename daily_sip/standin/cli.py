"""The ``daily-sip emulator`` command: run the offline Daily stand-in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .config import DEV_API_KEY


def emulator(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind; 0 picks a free one.")] = 8787,
    api_key: Annotated[
        str, typer.Option(help="The only Bearer key accepted.", envvar="DAILY_STANDIN_API_KEY")
    ] = DEV_API_KEY,
    domain_name: Annotated[
        str, typer.Option(help="Room URLs are https://<domain>.daily.co/<room>.")
    ] = "standin",
    rate_limit_scale: Annotated[
        float, typer.Option(help="Multiplier on Daily's rate limits; 0 turns them off.")
    ] = 1.0,
    retry_after: Annotated[
        bool, typer.Option(help="Add a Retry-After header to 429 answers (Daily documents none).")
    ] = False,
    ring_timeout: Annotated[
        float, typer.Option(help="Seconds a 'noanswer' dial-out rings before failing with 408.")
    ] = 30.0,
    hangup_after: Annotated[
        float, typer.Option(help="Seconds a 'hangup' dial-out stays answered before the far end hangs up.")
    ] = 5.0,
    ivr_timeout: Annotated[
        float, typer.Option(help="Seconds an 'ivr-<digits>' bridge waits for '<digits>#' before hanging up.")
    ] = 15.0,
    ivr_reject_delay: Annotated[
        float, typer.Option(help="Seconds an 'ivr-<digits>' bridge stays up after a wrong entry.")
    ] = 3.0,
    connect_delay: Annotated[
        float, typer.Option(help="Seconds from dialOut/start to dialout.connected (or the error).")
    ] = 0.5,
    answer_delay: Annotated[
        float, typer.Option(help="Seconds from dialout.connected to dialout.answered.")
    ] = 1.0,
    session_limit: Annotated[
        int, typer.Option(help="max_sip_pstn_sessions_per_room: active SIP/PSTN legs per room.")
    ] = 5,
    webhook_timeout: Annotated[
        float, typer.Option(help="Seconds a webhook URL has to answer 200 (deliveries and ping).")
    ] = 3.0,
    webhook_retry_base: Annotated[
        float, typer.Option(help="Base delay of 'exponential' retries: base * 2**n seconds.")
    ] = 1.0,
    fault_5xx: Annotated[
        float, typer.Option("--fault-5xx", help="Share of /v1 requests answered 500/503.")
    ] = 0.0,
    fault_latency: Annotated[float, typer.Option(help="Seconds added to every /v1 request.")] = 0.0,
    fault_drop: Annotated[float, typer.Option(help="Share of webhook events never sent.")] = 0.0,
    fault_duplicate: Annotated[float, typer.Option(help="Share of webhook events sent twice.")] = 0.0,
    fault_reorder: Annotated[
        float, typer.Option(help="Share of webhook events held back and sent after the next.")
    ] = 0.0,
    fault_lost_response: Annotated[
        float,
        typer.Option(help="Share of successful dialOut/start calls whose answer is lost (504)."),
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the fault RNG; same seed, same faults.")] = 0,
    enforce_idle_default: Annotated[
        bool,
        typer.Option(
            help="Treat an unset dialout_config.max_idle_timeout_sec as Daily's default 0: "
            "an answered dial-out alone in the room is hung up at once (Daily's documented "
            "behaviour; --no-enforce-idle-default leaves such a leg up)."
        ),
    ] = True,
    participant_events: Annotated[
        bool,
        typer.Option(
            help="Emit participant.joined/left for every participant, legs included "
            "(as Daily does for a webhook without eventTypes)."
        ),
    ] = True,
    presence_lag: Annotated[
        float,
        typer.Option(
            help="Seconds before presence shows a join or a leave (Daily: near-real-time, "
            "poll at most every 15 s; observed 10-25 s)."
        ),
    ] = 15.0,
    presence_ringing: Annotated[
        bool,
        typer.Option(
            help="Presence lists a dial-out while it rings (Daily does not say); "
            "--no-presence-ringing lists it only once answered."
        ),
    ] = True,
    telephony_profile: Annotated[
        str,
        typer.Option(
            help="How busy / no answer / declined / unreachable reach webhooks (Daily does "
            "not document it): sip-code, free-text, stopped, connected-stopped, or a profile "
            "JSON file recorded by `daily-sip doctor --dial`."
        ),
    ] = "sip-code",
    dialout_allowed: Annotated[
        bool,
        typer.Option(
            help="Whether the domain may dial out at all; off: like a domain without a paid plan, "
            "every dialOut/start is refused with 403 (Daily: dial-out needs a paid account)."
        ),
    ] = True,
    sip_mode: Annotated[
        str,
        typer.Option(
            help="scripted: the SIP URI's user part scripts each dial-out, nothing is sent. "
            "real: each SIP dial-out is a real call placed by PJSIP from --sip-bind (INVITE with "
            "SDP, CANCEL/BYE, RTP, RFC 4733 DTMF); the far end's answers decide "
            "the webhooks, and SIP clients calling sip:<endpoint user>@<--sip-bind> dial in. "
            "Needs pip install 'daily-sip-flows[sip]'; see docs/real-sip.md."
        ),
    ] = "scripted",
    sip_bind: Annotated[
        str, typer.Option(help="host:port (UDP) the real-SIP mode sends from and listens on.")
    ] = "127.0.0.1:5070",
    log_level: Annotated[
        str, typer.Option(help="Log level for stderr: debug, info, warning, error.")
    ] = "warning",
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="JSON or YAML file of settings (snake_case or kebab-case keys). "
            "Flags that differ from their defaults override the file.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Run the offline Daily stand-in (prints its base URL first, then serves)."""
    from .config import EmulatorConfig
    from .server import run

    given = {
        "host": host,
        "port": port,
        "api_key": api_key,
        "domain_name": domain_name,
        "rate_limit_scale": rate_limit_scale,
        "retry_after": retry_after,
        "ring_timeout": ring_timeout,
        "hangup_after": hangup_after,
        "ivr_timeout": ivr_timeout,
        "ivr_reject_delay": ivr_reject_delay,
        "connect_delay": connect_delay,
        "answer_delay": answer_delay,
        "session_limit": session_limit,
        "webhook_timeout": webhook_timeout,
        "webhook_retry_base": webhook_retry_base,
        "fault_5xx": fault_5xx,
        "fault_latency": fault_latency,
        "fault_drop": fault_drop,
        "fault_duplicate": fault_duplicate,
        "fault_reorder": fault_reorder,
        "fault_lost_response": fault_lost_response,
        "seed": seed,
        "enforce_idle_default": enforce_idle_default,
        "presence_lag": presence_lag,
        "presence_ringing": presence_ringing,
        "participant_events": participant_events,
        "telephony_profile": telephony_profile,
        "dialout_allowed": dialout_allowed,
        "sip_mode": sip_mode,
        "sip_bind": sip_bind,
        "log_level": log_level,
    }
    try:
        if config is not None:
            defaults = EmulatorConfig.defaults()
            # typer cannot tell "left at default" from "passed the default"; a flag that
            # still holds its default value lets the file decide.
            overrides = {k: v for k, v in given.items() if v != defaults[k]}
            settings = EmulatorConfig.load(config, overrides)
        else:
            settings = EmulatorConfig(**given)
    except (ValueError, TypeError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    raise typer.Exit(run(settings))
