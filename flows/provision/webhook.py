"""The domain's webhook, checked by the first campaign of a process and then once a minute.

A Daily domain has one webhook, so every campaign of a worker would check the same one: a
``GET /webhooks`` (and a permit of the account's rate window) per campaign. Here the campaigns
of one process share the check: the first runs it and the others wait for its answer; a check
older than `CHECK_EVERY_SECONDS` is made again, so a webhook Daily marked FAILED is revived by
the next campaign after at most that long. A failed check is not remembered.
"""

from __future__ import annotations

import hashlib

from daily_sip.flows.supervision.per_loop import AtMostEvery, per_loop
from daily_sip.tasks import DailyCredentials
from daily_sip.tasks.retries import inline
from daily_sip.tasks.webhooks import aensure_webhook

CHECK_EVERY_SECONDS = 60.0


_checks = per_loop(lambda: AtMostEvery(CHECK_EVERY_SECONDS))


def _key(url: str, creds: DailyCredentials) -> tuple[str, ...]:
    def digest(value: str) -> str:
        return hashlib.sha256(value.encode()).hexdigest()

    secret = creds.webhook_secret.get_secret_value() if creds.webhook_secret else ""
    return (creds.api_url, digest(creds.api_key.get_secret_value()), url, digest(secret))


async def ensure_webhook_shared(url: str, creds: DailyCredentials) -> bool:
    """Point the domain's webhook at ``url`` unless this process checked it within the minute.

    Returns whether this call asked Daily.

    Example:
        ```python
        await ensure_webhook_shared("https://hooks.example.com/webhook", creds)  # True: checked
        await ensure_webhook_shared("https://hooks.example.com/webhook", creds)  # False: shared
        ```
    """
    return await _checks().run(_key(url, creds), lambda: inline(aensure_webhook, url, credentials=creds))
