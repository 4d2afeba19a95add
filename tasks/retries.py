"""Retry policy shared by every task: retry what time can cure, fail fast on what it cannot."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from .errors import DailyError, DailyRateLimitError, is_transient
from .ratelimit import RateClass, pace, run_warning

T = TypeVar("T")

# Retry-After is not documented by Daily; if it ever arrives we honour it, within reason.
MAX_RETRY_AFTER_SECONDS = 60.0
# `persist`'s backoff between attempts (each attempt has the task's own short retries inside).
BACKOFF_START_SECONDS, BACKOFF_MAX_SECONDS = 1.0, 20.0
_log = logging.getLogger("daily_sip.retries")


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


# A 429 is waited out and retried inside the call this many times before it surfaces (then the
# task's own retries still follow): with the pacer in front, one is already a surprise.
MAX_429_RETRIES = 8


async def paced_call(rate: RateClass, call: Callable[[], Awaitable[T]]) -> T:
    """Pace, call; a 429 is waited out (Retry-After, then a full window) and the call retried.

    The pacer is told about the 429 (`pace(after_429=True)`), so the whole account backs off,
    not only this call. A 429 therefore costs time, never a failed target.

    Example:
        ```python
        room = await paced_call(DEFAULT, lambda: client.get_room("standup"))
        ```
    """
    after_429 = False
    for attempt in range(MAX_429_RETRIES + 1):
        permit = await pace(rate, after_429=after_429)
        try:
            return await call()
        except DailyRateLimitError as exc:
            refused = exc
        finally:
            await permit.done()
        if attempt == MAX_429_RETRIES:
            raise refused
        run_warning(
            "Daily answered 429 to %s %s (%s class); waiting out the window and retrying",
            refused.method,
            refused.path,
            rate.key,
        )
        if refused.retry_after:
            await asyncio.sleep(min(refused.retry_after, MAX_RETRY_AFTER_SECONDS))
        after_429 = True
    raise AssertionError("unreachable")


async def inline(task: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a library task's body in the caller's run, with the task's retry policy, but no task run.

    The tasks are the library's public surface, and a task run per Daily call is right for a
    user's own flow. A campaign makes a dozen such calls, and each task run costs the Prefect
    server ~75 ms of CPU (state changes, their events, the task-run recorder): more than all
    of Daily's own events for that call. The campaign flow therefore calls the same bodies
    through this, with the same retries (transient errors only, the same backoff and jitter)
    and the same pacing; its log and board show every step.

    Example:
        ```python
        room = await inline(acreate_room, "standup", properties={"sip": {...}}, credentials=creds)
        ```
    """
    retries = task.retries or 0
    delays = task.retry_delay_seconds
    delays = list(delays) if isinstance(delays, list | tuple) else [delays or 0] * max(retries, 1)
    jitter = task.retry_jitter_factor or 0
    for attempt in range(retries + 1):
        try:
            return await task.fn(*args, **kwargs)
        except Exception as exc:
            if attempt >= retries or not is_transient(exc):
                raise
            delay = delays[min(attempt, len(delays) - 1)]
            delay = max(0.0, delay * (1 + random.uniform(-jitter, jitter)))
            run_warning(
                "%s failed (%s: %s); retry %d of %d in %.1f s",
                task.name,
                type(exc).__name__,
                exc,
                attempt + 1,
                retries,
                delay,
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


async def persist(step: Callable[[], Awaitable[T]], deadline: float, what: str) -> T:
    """Run ``step`` until it succeeds, a permanent error, or ``deadline`` (monotonic) passes.

    Transient Daily errors (5xx, 429, timeouts) are retried with backoff; the last one is
    raised at the deadline. Permanent ones (4xx, e.g. 404) are raised at once.

    Example:
        ```python
        await persist(lambda: inline(adelete_room, "r", credentials=creds), time.monotonic() + 60, "delete")
        ```
    """
    delay = BACKOFF_START_SECONDS
    while True:
        try:
            return await step()
        except DailyError as exc:
            if not exc.transient or time.monotonic() + delay > deadline:
                raise
            _log.warning("%s failed (%s); retrying in %.0f s", what, exc, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, BACKOFF_MAX_SECONDS)
