"""Retries: what time can cure is tried again, what it cannot fails fast. One loop does it all.

`retry` is the one retry loop of the project: a step, which failures to try again (``when``),
how long to pause before each retry (``delay``: seconds, or None to give up) and what to say.
Everything else is a policy built on it:

* `paced_call`: one Daily request on a permit; a 429 is waited out and retried on a new permit;
* `inline`: a library task's body with that task's own retries (its delays and jitter);
* `persist`: a step retried with doubling pauses until a deadline (cleanup, hang-ups);
* the shared pacer's ask (`daily_sip.tasks.ratelimit`), a dial-out start whose request surely
  did not reach Daily (`daily_sip.flows.dial.attempts`), the live event subscription
  (`daily_sip.flows.collect.listener`) and the receiver's spool (`daily_sip.receiver.spool`).

A loop elsewhere that waits and repeats is a poll (for a state to appear) or a period (a
heartbeat), not a retry of a failure; it says so where it is written.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from .errors import DailyError, DailyRateLimitError, is_transient
from .ratelimit import RateClass, pace, run_warning

if TYPE_CHECKING:
    from prefect import Task

P = ParamSpec("P")
T = TypeVar("T")

# The pause before retry ``n`` (0 = the first retry) after ``error``, or None: give up.
Delay = Callable[[int, Exception], float | None]

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


async def retry(
    step: Callable[[], Awaitable[T]],
    *,
    when: Callable[[Exception], bool],
    delay: Delay,
    on_retry: Callable[[Exception, int, float], object] | None = None,
) -> T:
    """Run ``step`` until it returns: a failure ``when`` accepts is retried after ``delay``.

    ``delay(n, error)`` is the pause before retry ``n`` (0 = the first); None gives up, and so
    does a failure ``when`` rejects: that failure is raised as it is. ``on_retry(error, n,
    pause)`` is called before each pause (to log it). Cancellation is never retried.

    Example:
        >>> import asyncio
        >>> calls = []
        >>> async def flaky():
        ...     calls.append(1)
        ...     if len(calls) < 3:
        ...         raise ConnectionError("refused")
        ...     return "ok"
        >>> refused = lambda e: isinstance(e, ConnectionError)
        >>> asyncio.run(retry(flaky, when=refused, delay=doubling(0.001, 0.01)))
        'ok'
        >>> len(calls)
        3
    """
    n = 0
    while True:
        try:
            return await step()
        except Exception as exc:
            if not when(exc):
                raise
            pause = delay(n, exc)
            if pause is None:
                raise
            if on_retry is not None:
                on_retry(exc, n, pause)
        await asyncio.sleep(pause)
        n += 1


def doubling(first: float, most: float) -> Delay:
    """Pauses of ``first`` seconds, doubling each retry, at most ``most``; never gives up.

    Example:
        >>> pause = doubling(0.5, 10.0)
        >>> [pause(n, Exception()) for n in range(7)]
        [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    """
    return lambda n, _error: min(first * 2.0 ** min(n, 64), most)


def until(deadline: float, delay: Delay) -> Delay:
    """``delay``, giving up when the pause would end after ``deadline`` (`time.monotonic`)."""

    def bounded(n: int, error: Exception) -> float | None:
        pause = delay(n, error)
        return None if pause is None or time.monotonic() + pause > deadline else pause

    return bounded


# A 429 is waited out and retried inside the call this many times before it surfaces (then the
# task's own retries still follow): with the pacer in front, one is already a surprise.
MAX_429_RETRIES = 8


def _after_429(n: int, error: Exception) -> float | None:
    """Retry-After if Daily sent one (within reason); the window itself is kept by `pace`."""
    if n >= MAX_429_RETRIES:
        return None
    retry_after = getattr(error, "retry_after", None)
    return min(retry_after, MAX_RETRY_AFTER_SECONDS) if retry_after else 0.0  # then `pace` waits


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

    async def attempt() -> T:
        permit = await pace(rate, after_429=after_429)
        try:
            return await call()
        finally:
            await permit.done()

    def refused(error: Exception, _n: int, _pause: float) -> None:
        nonlocal after_429
        after_429 = True  # the next permit waits a full window: the pacer is told (see `pace`)
        answer = cast(DailyRateLimitError, error)
        run_warning(
            "Daily answered 429 to %s %s (%s class); waiting out the window and retrying",
            answer.method,
            answer.path,
            rate.key,
        )

    return await retry(
        attempt, when=lambda e: isinstance(e, DailyRateLimitError), delay=_after_429, on_retry=refused
    )


async def inline(task: Task[P, Coroutine[Any, Any, T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a library task's body in the caller's run, with the task's retry policy, but no task run.

    Typed as the task is: ``await inline(aget_room, "standup", credentials=creds)`` is a `Room`,
    and its arguments are checked against the task's parameters.

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

    def pause(n: int, _error: Exception) -> float | None:
        if n >= retries:
            return None
        return max(0.0, delays[min(n, len(delays) - 1)] * (1 + random.uniform(-jitter, jitter)))

    def warn(error: Exception, n: int, pause: float) -> None:
        run_warning(
            "%s failed (%s: %s); retry %d of %d in %.1f s",
            task.name,
            type(error).__name__,
            error,
            n + 1,
            retries,
            pause,
        )

    return await retry(lambda: task.fn(*args, **kwargs), when=is_transient, delay=pause, on_retry=warn)


async def persist(step: Callable[[], Awaitable[T]], deadline: float, what: str) -> T:
    """Run ``step`` until it succeeds, a permanent error, or ``deadline`` (monotonic) passes.

    Transient Daily errors (5xx, 429, timeouts) are retried with backoff; the last one is
    raised at the deadline. Permanent ones (4xx, e.g. 404) are raised at once.

    Example:
        ```python
        await persist(lambda: inline(adelete_room, "r", credentials=creds), time.monotonic() + 60, "delete")
        ```
    """
    return await retry(
        step,
        when=lambda e: isinstance(e, DailyError) and e.transient,
        delay=until(deadline, doubling(BACKOFF_START_SECONDS, BACKOFF_MAX_SECONDS)),
        on_retry=lambda error, _n, pause: _log.warning(
            "%s failed (%s); retrying in %.0f s", what, error, pause
        ),
    )
