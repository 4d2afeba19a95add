"""Prefect tasks for the domain's Daily webhook."""

from __future__ import annotations

from typing import Any

from prefect import task

from ._shared import client_for
from .credentials import DailyCredentials
from .models import Webhook, WebhookSettings
from .ratelimit import DEFAULT
from .retries import RETRY_POLICY, paced_call


@task(name="daily-create-webhook", **RETRY_POLICY)
async def create_webhook(
    settings: WebhookSettings | dict[str, Any], credentials: DailyCredentials | None = None
) -> Webhook:
    """Register the domain's webhook; Daily pings the URL first and fails unless it answers 200.

    Example:
        ```python
        hook = await create_webhook({"url": "https://hooks.example.com/webhook",
                                     "hmac": creds.webhook_secret.get_secret_value(),
                                     "retryType": "exponential"}, credentials=creds)
        ```
    """
    return await paced_call(DEFAULT, lambda: client_for(credentials).create_webhook(settings))


@task(name="daily-list-webhooks", **RETRY_POLICY)
async def list_webhooks(credentials: DailyCredentials | None = None) -> list[Webhook]:
    """The domain's webhooks (Daily allows one).

    Example:
        ```python
        hooks = await list_webhooks(credentials=creds)
        ```
    """
    return await paced_call(DEFAULT, lambda: client_for(credentials).list_webhooks())


@task(name="daily-get-webhook", **RETRY_POLICY)
async def get_webhook(uuid: str, credentials: DailyCredentials | None = None) -> Webhook:
    """One webhook with its ``state`` and ``failedCount``.

    Example:
        ```python
        hook = await get_webhook(hook.uuid, credentials=creds)
        if hook.failed: ...
        ```
    """
    return await paced_call(DEFAULT, lambda: client_for(credentials).get_webhook(uuid))


@task(name="daily-update-webhook", **RETRY_POLICY)
async def update_webhook(
    uuid: str, settings: WebhookSettings | dict[str, Any], credentials: DailyCredentials | None = None
) -> Webhook:
    """Change a webhook; posting it again re-activates one Daily marked FAILED.

    Example:
        ```python
        await update_webhook(hook.uuid, {"url": hook.url}, credentials=creds)
        ```
    """
    return await paced_call(DEFAULT, lambda: client_for(credentials).update_webhook(uuid, settings))


@task(name="daily-delete-webhook", **RETRY_POLICY)
async def delete_webhook(uuid: str, credentials: DailyCredentials | None = None) -> bool:
    """Remove a webhook; delivery stops at once. False when it was already gone.

    Example:
        ```python
        await delete_webhook(hook.uuid, credentials=creds)
        ```
    """
    return await paced_call(DEFAULT, lambda: client_for(credentials).delete_webhook(uuid))
