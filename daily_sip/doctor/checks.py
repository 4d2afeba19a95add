"""``daily-sip doctor``'s checks: one verdict per question a first run on a Daily account raises.

Each check is one line, green or red, and a red one names its fix. Nothing is dialled: dial-out is
probed with ``dialOut/start`` in an empty room created for the probe and without
``dialout_config.allow_room_start``, which Daily answers 404 "not hosting a call" when dial-out is
allowed (https://docs.daily.co/reference/rest-api/rooms/dialout/start); its destination is under
``.invalid``, a name no DNS resolves (RFC 2606), so even a surprising 200 reaches nobody. The
probe room is deleted on every exit path.
"""

from __future__ import annotations

import ipaddress
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from daily_sip.tasks import DailyCredentials
from daily_sip.tasks.client import DailyClient
from daily_sip.tasks.errors import DailyAPIError, DailyError, DailyNotFoundError
from daily_sip.tasks.models import SipSettings, Webhook
from daily_sip.tasks.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, decode_secret, sign

from .wire import WireLog, recording_client

#: Where the dial-out probe "dials": never resolvable (RFC 2606), so nothing rings even on a 200.
PROBE_URI = "sip:daily-sip-doctor-probe@example.invalid"
#: Seconds the receiver has to answer the verification ping (Daily: "a few seconds").
PING_TIMEOUT = 5.0
PAID_PLAN_FIX = (
    "dial-out needs a paid plan: add a payment method (Daily dashboard > Billing) or ask "
    "help@daily.co to enable SIP dial-out, then run `daily-sip doctor` again"
)


@dataclass
class Check:
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass
class Findings:
    """What the checks learned and later steps (``--dial``) reuse."""

    checks: list[Check]
    webhook: Webhook | None = None
    domain: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def is_private(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost") or host.endswith(".local"):
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    return addr.is_private or addr.is_loopback or addr.is_link_local


def _api_error_text(exc: BaseException) -> str:
    if isinstance(exc, DailyAPIError):
        return f"HTTP {exc.status} {exc.error or ''}{': ' + exc.info if exc.info else ''}".strip()
    return str(exc)


async def check_key(daily: DailyClient, creds: DailyCredentials) -> tuple[Check, dict[str, Any] | None]:
    from daily_sip.flows.provision.preflight import explain

    try:
        domain = await daily.get_domain_config()
    except DailyError as exc:
        return Check("key and URL", False, explain(exc, creds.api_url)), None
    return Check("key and URL", True, f"accepted by {creds.api_url}"), domain


def check_domain(domain: dict[str, Any]) -> Check:
    name, config = domain.get("domain_name"), domain.get("config")
    if not name or not isinstance(config, dict):
        return Check(
            "domain",
            False,
            f"GET / answered without domain_name/config (keys: {', '.join(sorted(domain)) or 'none'})",
            "check the API URL: it is Daily's REST API root, e.g. https://api.daily.co/v1",
        )
    notable = {k: config[k] for k in ("disable_rate_limiting", "hipaa", "sfu_impl") if k in config}
    shown = ", ".join(f"{k}={v}" for k, v in notable.items())
    return Check(
        "domain",
        True,
        f"{name} ({len(config)} setting(s) differ from Daily's defaults{': ' + shown if shown else ''})",
    )


async def check_room_features(daily: DailyClient) -> list[Check]:
    """Dial-out and SIP dial-in, probed in a room of its own that is always deleted."""
    name = f"daily-sip-doctor-{uuid.uuid4().hex[:10]}"
    checks: list[Check] = []
    try:
        try:
            # exp: Daily deletes the room itself should this process die before the finally.
            await daily.create_room(name, properties={"enable_dialout": True, "exp": int(time.time()) + 600})
        except DailyError as exc:
            why = f"a room with enable_dialout was refused: {_api_error_text(exc)}"
            return [Check("dial-out", False, why, PAID_PLAN_FIX)]
        checks.append(await _probe_dialout(daily, name))
        checks.append(await _probe_sip(daily, name))
    finally:
        try:
            await daily.delete_room(name)
        except DailyError as exc:
            checks.append(
                Check(
                    "probe room",
                    False,
                    f"could not delete {name}: {_api_error_text(exc)}",
                    "delete it in the dashboard; it expires by itself within 10 minutes",
                )
            )
    return checks


async def _probe_dialout(daily: DailyClient, room: str) -> Check:
    body = {"sipUri": PROBE_URI, "displayName": "daily-sip doctor probe", "userId": "daily-sip-doctor"}
    try:
        started = await daily.start_dial_out(room, body)
    except DailyNotFoundError as exc:
        return Check(
            "dial-out",
            True,
            f"allowed: the probe in an empty room got {_api_error_text(exc)} (nothing dialled)",
        )
    except DailyError as exc:
        return Check(
            "dial-out",
            False,
            f"refused: {_api_error_text(exc)}",
            PAID_PLAN_FIX,
        )
    try:
        await daily.stop_dial_out(room, started.session_id)
    except DailyError:
        pass  # the room is deleted next, which ends every call in it
    return Check(
        "dial-out",
        True,
        f"allowed: Daily started the probe in an empty room (session {started.session_id[:8]}…, to "
        "an unresolvable address) and it was stopped at once",
    )


async def _probe_sip(daily: DailyClient, room: str) -> Check:
    try:
        updated = await daily.enable_sip(room, SipSettings(display_name="daily-sip doctor"))
    except DailyError as exc:
        return Check(
            "SIP dial-in",
            False,
            f"turning SIP on was refused: {_api_error_text(exc)}",
            "SIP needs a paid plan: add a payment method (Daily dashboard > Billing) or ask help@daily.co; "
            "campaigns with dial_in.enabled: false still work",
        )
    endpoint = updated.config.sip_uri
    shown = f"sip_uri {endpoint.endpoint}" if endpoint else "no sip_uri in the room's config yet"
    return Check("SIP dial-in", True, f"a room accepts properties.sip ({shown})")


def check_webhook(hooks: list[Webhook], receiver_url: str | None) -> list[Check]:
    if not hooks:
        return [
            Check(
                "webhook",
                False,
                "the domain has no webhook: campaigns learn outcomes only from Daily's webhooks",
                "give a campaign `--webhook-url https://<public address of the receiver>/webhook` "
                "(`daily-sip run` or `daily-sip setup`); it creates the webhook",
            )
        ]
    hook = hooks[0]
    state = str(hook.state) if hook.state is not None else "unknown"
    failures = hook.failed_count or 0
    pushed = hook.last_moment_pushed or "never"
    types = hook.event_types or []
    detail = (
        f"{state}, points at {hook.url}, {failures} failed deliveries in a row, last delivered {pushed}, "
        f"retryType {hook.retry_type or 'unset'}, events {', '.join(types) if types else 'all'}"
    )
    checks: list[Check] = []
    if hook.failed or state.upper() in ("INACTIVE", "STOPPED", "2"):
        checks.append(
            Check(
                "webhook",
                False,
                detail,
                f"Daily stopped sending: make {hook.url} answer 200, then re-activate it with "
                f"`daily-sip run --webhook-url {hook.url}` (or POST /webhooks/{hook.uuid} with the same url)",
            )
        )
    elif types and not any(t.startswith("dialout.") for t in types):
        checks.append(
            Check(
                "webhook",
                False,
                detail,
                "its eventTypes leave out dialout.*: a campaign would see no outcome; add them or "
                "leave eventTypes empty",
            )
        )
    else:
        checks.append(Check("webhook", True, detail))
    if receiver_url and hook.url != receiver_url:
        checks.append(
            Check(
                "webhook owner",
                False,
                f"the webhook points at {hook.url}, not at {receiver_url}",
                f"if {hook.url} is another application's, a campaign with --webhook-url would cut it off "
                "(it repoints URL and secret); otherwise repoint it with `daily-sip run --webhook-url "
                f"{receiver_url}`",
            )
        )
    return checks


async def check_receiver(receiver_url: str | None, api_url: str, hook: Webhook | None) -> Check:
    """Does the receiver answer Daily's verification ping, signed as Daily would sign it, from here?"""
    if not receiver_url:
        return Check(
            "receiver",
            False,
            "no receiver URL to check (no --webhook-url and no webhook on the domain)",
            "give `--webhook-url https://<public address of the receiver>/webhook`",
        )
    if is_private(receiver_url) and not is_private(api_url):
        return Check(
            "receiver",
            False,
            f"{receiver_url} is a private address that {urlsplit(api_url).hostname} cannot reach",
            "expose the receiver at a public HTTPS URL (a reverse proxy or a tunnel) and use that URL",
        )
    body = json.dumps({"test": "test"}).encode()
    headers = {"Content-Type": "application/json"}
    signed = hook is not None and hook.url == receiver_url and hook.hmac is not None
    if signed and hook is not None and hook.hmac is not None:
        stamp = str(int(time.time()))
        headers[TIMESTAMP_HEADER] = stamp
        headers[SIGNATURE_HEADER] = sign(decode_secret(hook.hmac), stamp, body)
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(timeout=PING_TIMEOUT) as http:
            answer = await http.post(receiver_url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return Check(
            "receiver",
            False,
            f"{receiver_url} did not answer the verification ping from here ({type(exc).__name__})",
            "start `daily-sip receiver` and check the URL, port and tunnel",
        )
    took = time.monotonic() - started
    how = "signed with the webhook's hmac" if signed else "unsigned"
    if answer.status_code == 401 and signed:
        return Check(
            "receiver",
            False,
            f"{receiver_url} refused the ping signed with the webhook's hmac (401)",
            "the receiver's secret differs from the webhook's: start it with the block or "
            "DAILY_WEBHOOK_SECRET that `daily-sip setup` saved",
        )
    if answer.status_code != 200:
        return Check(
            "receiver",
            False,
            f"{receiver_url} answered the ping {answer.status_code} ({how}); Daily wants 200",
            "point the URL at `daily-sip receiver`'s /webhook",
        )
    return Check(
        "receiver",
        True,
        f"{receiver_url} answered the ping ({how}) 200 in {took:.2f} s from this machine "
        "(Daily's servers reach it only if it is public)",
    )


def check_rate_limits(log: WireLog) -> Check:
    limited = log.count(429)
    headers = log.rate_headers()
    seen = "; ".join(f"{k}: {v}" for k, v in sorted(headers.items())) or "no rate-limit headers sent"
    detail = f"{len(log.exchanges)} call(s), {limited} answered 429; {seen}"
    if limited:
        return Check(
            "rate limits",
            False,
            detail,
            "something else is using this key's allowance: run campaigns through the pacer "
            "(DAILY_PACER_URL) or wait for the other user to finish",
        )
    return Check("rate limits", True, detail)


async def diagnose(creds: DailyCredentials, receiver_url: str | None, log: WireLog) -> Findings:
    """Run every check against the credentials' Daily; stops after a failed key/URL check."""
    async with recording_client(creds.api_key, creds.api_url, log, creds.timeout_seconds) as daily:
        key, domain = await check_key(daily, creds)
        findings = Findings([key], domain=domain)
        if domain is None:
            return findings
        findings.checks.append(check_domain(domain))
        findings.checks += await check_room_features(daily)
        try:
            hooks = await daily.list_webhooks()
        except DailyError as exc:
            findings.checks.append(Check("webhook", False, f"GET /webhooks failed: {_api_error_text(exc)}"))
            hooks = []
        else:
            findings.checks += check_webhook(hooks, receiver_url)
        findings.webhook = hooks[0] if hooks else None
    target = receiver_url or (findings.webhook.url if findings.webhook else None)
    findings.checks.append(await check_receiver(target, creds.api_url, findings.webhook))
    findings.checks.append(check_rate_limits(log))
    return findings
