"""Retry policy shared by every task: retry what time can cure, fail fast on what it cannot."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from .errors import DailyRateLimitError, is_transient
from .ratelimit import RateClass, pace

T = TypeVar("T")

# Retry-After is not documented by Daily; if it ever arrives we honour it, within reason.
MAX_RETRY_AFTER_SECONDS = 60.0


def retry_on_transient(task: Any, task_run: Any, state: Any) -> bool:
    """``retry_condition_fn``: True for 429, 5xx, timeouts and connection errors; False otherwise.

    A 4xx (bad request, unknown room, wrong key) will not get better by trying again.
    """
    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None:
        try:
            state.result(raise_on_failure=True)
        except Exception as err:
            exc = err
    return exc is not None and is_transient(exc)


# Daily says: on 429, back off exponentially. 0.5, 1, 2, 4, 8 s (+-50 % jitter) rides out a
# 5-second window twice over, and the whole ladder stays under 20 s.
RETRY_POLICY: dict[str, Any] = {
    "retries": 5,
    "retry_delay_seconds": exponential_backoff(backoff_factor=0.5),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_on_transient,
    "cache_policy": NO_CACHE,  # every call is a side effect or a fresh read
}


async def paced_call(rate: RateClass, call: Callable[[], Awaitable[T]]) -> T:
    """Pace, call, and on a 429 with Retry-After wait that long before the task's retry."""
    await pace(rate)
    try:
        return await call()
    except DailyRateLimitError as exc:
        if exc.retry_after:
            await asyncio.sleep(min(exc.retry_after, MAX_RETRY_AFTER_SECONDS))
        raise
