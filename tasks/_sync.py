"""Every task in two flavours: ``aname`` (async) and ``name`` (sync), as PrefectHQ's integrations do.

The async task is the implementation. Its sync twin is a Prefect task of the same name, retry
policy and pacing that runs the async body to completion on one background event loop, so a
sync flow gets a result instead of an un-awaited coroutine. The background loop lives for the
process, which keeps the pooled HTTP clients (one per loop) warm across sync calls.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from prefect import Task, task

from .retries import RETRY_POLICY

P = ParamSpec("P")
R = TypeVar("R")

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="daily-sip-sync", daemon=True).start()
            _loop = loop
        return _loop


def run_sync(coro: Coroutine[Any, Any, R]) -> R:
    """Run a coroutine on the background loop and wait for it.

    ``run_coroutine_threadsafe`` schedules it with a copy of the caller's context, so Prefect's
    run context (loggers, task run) is the caller's.
    """
    return asyncio.run_coroutine_threadsafe(coro, _background_loop()).result()


def daily_task(
    name: str,
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Task[P, Coroutine[Any, Any, R]]]:
    """``@task`` with the library's retry policy (transient errors only) and a stable name."""
    return task(name=name, **RETRY_POLICY)


def sync_twin(async_task: Task[P, Coroutine[Any, Any, R]]) -> Task[P, R]:
    """The blocking twin of an ``a``-prefixed async task, for sync flows and scripts."""
    body = async_task.fn
    sync_name = body.__name__.removeprefix("a")

    @functools.wraps(body)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return run_sync(body(*args, **kwargs))

    run.__name__ = run.__qualname__ = sync_name
    run.__doc__ = (
        f"Blocking twin of ``{body.__name__}`` for sync flows: same parameters, retries and pacing; "
        f"call it without ``await``.\n\n    {(body.__doc__ or '').strip()}"
    )
    return task(name=async_task.name, **RETRY_POLICY)(run)
