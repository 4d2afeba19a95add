"""The domain's webhook, checked by the first campaign of a process and then once a minute.

A Daily domain has one webhook, so every campaign of a worker would check the same one: a
``GET /webhooks`` (and a permit of the account's rate window) per campaign. Here the campaigns
of one process share the check: the first runs it and the others wait for its answer; a check
older than `CHECK_EVERY_SECONDS` is made again, so a webhook Daily marked FAILED is revived by
the next campaign after at most that long. A failed check is not remembered.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field

from daily_sip.flows.supervision.per_loop import per_loop
from daily_sip.tasks import DailyCredentials
from daily_sip.tasks.retries import inline
from daily_sip.tasks.webhooks import aensure_webhook

CHECK_EVERY_SECONDS = 60.0


@dataclass
class _Checks:
    done_at: dict[tuple[str, ...], float] = field(default_factory=dict)
    locks: dict[tuple[str, ...], asyncio.Lock] = field(default_factory=dict)


_checks = per_loop(_Checks)


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
    checks, key = _checks(), _key(url, creds)
    lock = checks.locks.setdefault(key, asyncio.Lock())
    async with lock:
        done_at = checks.done_at.get(key)
        if done_at is not None and time.monotonic() - done_at < CHECK_EVERY_SECONDS:
            return False
        await inline(aensure_webhook, url, credentials=creds)
        checks.done_at[key] = time.monotonic()
        return True
