"""``daily-sip setup --take-over-webhook [--relay-to-previous]``: pointing a webhook in use at the receiver.

A Daily domain has one webhook (https://docs.daily.co/reference/rest-api/webhooks). When it
already feeds another application, repointing it (URL *and* HMAC secret) cuts that application
off and breaks its signature checks, so campaigns and ``setup`` refuse to
(`daily_sip.tasks.webhooks.WebhookOwnedElsewhere`) until the user chooses here:

* ``--take-over-webhook``: repoint it; the other application gets no more Daily events.
* ``--take-over-webhook --relay-to-previous``: first save the previous URL, secret and event types
  as a Prefect Secret block (``<credentials block>-webhook-relay``: ``daily-webhook-relay``);
  repoint only once the receiver at ``--webhook-url`` shows on ``/healthz`` that it relays there (started with
  ``--relay-block daily-webhook-relay --spool-dir DIR``), so no delivery falls between the two.
  The receiver then forwards every delivery, re-signed with that application's own secret
  (`daily_sip.receiver.relay`). Until it relays, the command saves the block, repoints nothing
  and says what to start; running it again finishes.

Every line says what was done; no secret is printed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from daily_sip.terminal import command

if TYPE_CHECKING:
    from daily_sip.tasks import DailyCredentials
    from daily_sip.tasks.models import Webhook


def relay_block_for(credentials_block: str) -> str:
    """The Prefect Secret block holding the relay target of a credentials block's domain."""
    return f"{credentials_block}-webhook-relay"


def _types(hook: Webhook) -> str:
    return ", ".join(hook.event_types) if hook.event_types else "every event type"


async def _receiver_relays_to(webhook_url: str, previous_url: str) -> str | None:
    """None when the receiver's ``/healthz`` shows it relays to ``previous_url``, else why not."""
    import httpx

    from daily_sip.receiver.relay import fingerprint

    health = webhook_url.rsplit("/", 1)[0] + "/healthz"
    try:
        async with httpx.AsyncClient(timeout=5, trust_env=False) as http:
            answer = await http.get(health)
        relay = answer.json().get("relay") if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        return f"{health} does not answer ({type(exc).__name__})"
    if not isinstance(relay, dict):
        return f"the receiver at {health} does not relay"
    if relay.get("target") != fingerprint(previous_url):
        return f"the receiver at {health} relays somewhere else"
    return None


async def _save_relay_block(name: str, hook: Webhook) -> None:
    from prefect.blocks.system import Secret

    if hook.hmac is None:
        raise typer.BadParameter(
            "Daily did not return the current webhook's secret, so its deliveries cannot be re-signed; "
            "use --take-over-webhook alone",
            param_hint="--relay-to-previous",
        )
    value = {"url": hook.url, "hmac": hook.hmac.get_secret_value(), "eventTypes": hook.event_types or []}
    if hook.basic_auth is not None:
        value["basicAuth"] = hook.basic_auth.get_secret_value()
    await Secret(value=value).save(name, overwrite=True)


async def take_over(
    creds: DailyCredentials, webhook_url: str, *, relay_block: str | None, credentials_block: str
) -> list[str]:
    """Repoint the domain's webhook at ``webhook_url`` (relaying to the previous one when
    ``relay_block`` is given); one line per thing done."""
    from daily_sip.receiver.relay import shown_url
    from daily_sip.tasks.webhooks import aensure_webhook, afind_foreign_webhook

    previous = await afind_foreign_webhook(webhook_url, credentials=creds)
    if previous is None:
        hook = await aensure_webhook.fn(webhook_url, credentials=creds)
        return [
            f"webhook {hook.uuid}: points at {shown_url(webhook_url)}; "
            "it feeds no other endpoint, nothing taken over"
        ]
    was = f"webhook {previous.uuid}: pointed at {shown_url(previous.url)} ({_types(previous)})"
    if relay_block:
        await _save_relay_block(relay_block, previous)
        saved = f"  its URL, secret and event types are saved in Prefect Secret block {relay_block}"
        why_not = await _receiver_relays_to(webhook_url, previous.url)
        if why_not is not None:
            return [
                was,
                saved,
                f"  NOT repointed yet: {why_not}. Start the receiver with "
                f"`{command('daily-sip')} receiver --credentials-block {credentials_block} "
                f"--relay-block {relay_block} --spool-dir DIR`, then run this command again",
            ]
    hook = await aensure_webhook.fn(webhook_url, credentials=creds, take_over=True)
    lines = [was, saved] if relay_block else [was]
    lines.append(
        f"  now points at {shown_url(hook.url)}, signed with the secret of block {credentials_block}, "
        f"for {_types(hook)}"
    )
    if relay_block:
        lines.append(
            f"  {shown_url(previous.url)} keeps getting its events: the receiver relays each delivery, "
            "re-signed with that endpoint's own secret"
        )
    else:
        lines.append(
            f"  {shown_url(previous.url)} gets no more Daily events (--relay-to-previous keeps it fed)"
        )
    return lines
