"""Prefect tasks for the domain's Daily webhook."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from ._shared import client_for, resolve_credentials
from ._sync import daily_task, sync_twin
from .credentials import DailyCredentials
from .errors import DailyError, DailyRequestError
from .events import DailyType
from .models import Webhook, WebhookSettings
from .ratelimit import DEFAULT
from .retries import paced_call


@daily_task("daily-create-webhook")
async def acreate_webhook(
    settings: WebhookSettings | dict[str, Any], credentials: DailyCredentials | None = None
) -> Webhook:
    """Register the domain's webhook; Daily pings the URL first and fails unless it answers 200.

    Example:
        ```python
        hook = await acreate_webhook({"url": "https://hooks.example.com/webhook",
                                     "hmac": creds.webhook_secret.get_secret_value(),
                                     "retryType": "exponential"}, credentials=creds)
        ```
    """
    return await paced_call(DEFAULT, lambda: client_for(credentials).create_webhook(settings))


@daily_task("daily-list-webhooks")
async def alist_webhooks(credentials: DailyCredentials | None = None) -> list[Webhook]:
    """The domain's webhooks (Daily allows one).

    Example:
        ```python
        hooks = await alist_webhooks(credentials=creds)
        ```
    """
    return await paced_call(DEFAULT, lambda: client_for(credentials).list_webhooks())


@daily_task("daily-get-webhook")
async def aget_webhook(uuid: str, credentials: DailyCredentials | None = None) -> Webhook:
    """One webhook with its ``state`` and ``failedCount``.

    Example:
        ```python
        hook = await aget_webhook(hook.uuid, credentials=creds)
        if hook.failed: ...
        ```
    """
    return await paced_call(DEFAULT, lambda: client_for(credentials).get_webhook(uuid))


@daily_task("daily-update-webhook")
async def aupdate_webhook(
    uuid: str, settings: WebhookSettings | dict[str, Any], credentials: DailyCredentials | None = None
) -> Webhook:
    """Change a webhook; posting it again re-activates one Daily marked FAILED.

    Example:
        ```python
        await aupdate_webhook(hook.uuid, {"url": hook.url}, credentials=creds)
        ```
    """
    return await paced_call(DEFAULT, lambda: client_for(credentials).update_webhook(uuid, settings))


@daily_task("daily-delete-webhook")
async def adelete_webhook(uuid: str, credentials: DailyCredentials | None = None) -> bool:
    """Remove a webhook; delivery stops at once. False when it was already gone.

    Example:
        ```python
        await adelete_webhook(hook.uuid, credentials=creds)
        ```
    """
    return await paced_call(DEFAULT, lambda: client_for(credentials).delete_webhook(uuid))


# What a campaign listens to; the domain's single webhook keeps any other types it already had.
CAMPAIGN_EVENT_TYPES = [
    DailyType.DIALOUT_CONNECTED,
    DailyType.DIALOUT_ANSWERED,
    DailyType.DIALOUT_STOPPED,
    DailyType.DIALOUT_ERROR,
    DailyType.DIALOUT_WARNING,
    DailyType.DIALIN_READY,
    DailyType.DIALIN_CONNECTED,
    DailyType.DIALIN_STOPPED,
    DailyType.DIALIN_ERROR,
    DailyType.DIALIN_WARNING,
    DailyType.MEETING_STARTED,
    DailyType.MEETING_ENDED,
]


class WebhookOwnedElsewhere(DailyError):
    """The domain's one webhook feeds another endpoint; taking it over needs an explicit choice.

    Raised before anything is changed. The message names where it points (no query string, no
    secret) and the two ways forward.
    """

    def __init__(self, hook: Webhook, url: str) -> None:
        self.hook = hook
        self.url = url
        super().__init__(
            f"the domain's Daily webhook points at {_shown(hook.url)}, not at this receiver "
            f"({_shown(url)}); nothing was changed. Either `daily-sip setup --webhook-url {_shown(url)} "
            "--take-over-webhook --relay-to-previous` (the receiver forwards every delivery there, "
            "re-signed with that endpoint's secret) or `--take-over-webhook` alone (that URL gets no more "
            "Daily events)"
        )


def _shown(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{':' + str(parts.port) if parts.port else ''}{parts.path}"


def owned_elsewhere(hook: Webhook, url: str, secret_value: str | None) -> bool:
    """True when ``hook`` feeds someone else: another URL, signed with a secret that is not ours.

    A webhook signed with our secret was set up by us (a receiver that moved), so it is ours to
    repoint; a FAILED webhook of someone else's is still theirs.
    """
    if hook.url == url:
        return False
    current = hook.hmac.get_secret_value() if hook.hmac else None
    return not (secret_value and current and current.strip() == secret_value.strip())


async def afind_foreign_webhook(url: str, credentials: DailyCredentials | None = None) -> Webhook | None:
    """The domain's webhook when it feeds another endpoint (`owned_elsewhere`), else None. Reads only.

    Example:
        ```python
        if (hook := await afind_foreign_webhook(receiver_url, credentials=creds)) is not None:
            print("taken:", hook.url)
        ```
    """
    creds = resolve_credentials(credentials)
    secret = creds.webhook_secret.get_secret_value() if creds.webhook_secret else None
    hooks = await paced_call(DEFAULT, client_for(creds).list_webhooks)
    return hooks[0] if hooks and owned_elsewhere(hooks[0], url, secret) else None


@daily_task("daily-ensure-webhook")
async def aensure_webhook(
    url: str,
    secret: SecretStr | str | None = None,
    event_types: list[str] | None = None,
    retry_type: str = "exponential",
    credentials: DailyCredentials | None = None,
    take_over: bool = False,
) -> Webhook:
    """Point the domain's Daily webhook at ``url``, signed with ``secret``; revive it if FAILED.

    A webhook that feeds another endpoint (`owned_elsewhere`) is left alone and
    `WebhookOwnedElsewhere` raised, unless ``take_over`` (``daily-sip setup --take-over-webhook``).

    Creates the webhook when the domain has none; updates it when its URL, secret or event
    types differ or Daily marked it FAILED; otherwise leaves it alone. ``secret`` defaults to the
    credentials' ``webhook_secret``. ``exponential`` retries avoid the circuit breaker's
    3-strikes FAILED state.

    Example:
        ```python
        hook = await aensure_webhook("https://hooks.example.com/webhook", credentials=creds)
        assert not hook.failed
        ```
    """
    creds = resolve_credentials(credentials)
    if secret is None:
        secret = creds.webhook_secret
    secret_value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    return await _ensure(url, secret_value, event_types, retry_type, creds, first=True, take_over=take_over)


async def _ensure(
    url: str,
    secret_value: str | None,
    event_types: list[str] | None,
    retry_type: str,
    creds: DailyCredentials,
    first: bool,
    take_over: bool = False,
) -> Webhook:
    client = client_for(creds)
    hooks = await paced_call(DEFAULT, client.list_webhooks)
    wanted = list(event_types or CAMPAIGN_EVENT_TYPES)
    if hooks:
        wanted += [t for t in hooks[0].event_types or [] if t not in wanted]
    settings = WebhookSettings(url=url, hmac=secret_value, event_types=wanted, retry_type=retry_type)
    if not hooks:
        try:
            return await paced_call(DEFAULT, lambda: client.create_webhook(settings))
        except DailyRequestError:
            # Another campaign may have created the domain's one webhook between our list and our
            # create (Daily refuses a second one with a 400): then share it, updated to our settings.
            if not first or not await paced_call(DEFAULT, client.list_webhooks):
                raise
            return await _ensure(
                url, secret_value, event_types, retry_type, creds, first=False, take_over=take_over
            )
    hook = hooks[0]
    if not take_over and owned_elsewhere(hook, url, secret_value):
        raise WebhookOwnedElsewhere(hook, url)
    current_secret = hook.hmac.get_secret_value() if hook.hmac else None
    up_to_date = (
        hook.url == url
        and not hook.failed
        and (secret_value is None or current_secret == secret_value)
        and set(wanted) <= set(hook.event_types or wanted)
        and (hook.retry_type or retry_type) == retry_type
    )
    if up_to_date:
        return hook
    return await paced_call(DEFAULT, lambda: client.update_webhook(hook.uuid, settings))


create_webhook = sync_twin(acreate_webhook)
list_webhooks = sync_twin(alist_webhooks)
get_webhook = sync_twin(aget_webhook)
update_webhook = sync_twin(aupdate_webhook)
delete_webhook = sync_twin(adelete_webhook)
ensure_webhook = sync_twin(aensure_webhook)
