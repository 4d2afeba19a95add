"""One watch for "suspend this run" for all the campaigns of an in-process worker.

For every run of a deployment, Prefect's flow engine (3.9) watches for the run being marked
Suspended from outside: ``prefect._flow_run_suspension.observe_flow_run_suspension`` starts a
thread with its own event loop, API client (and TLS context) and Prefect events subscription,
per run. In a process that runs 50 campaigns at once that was ~35 % of the worker's py-spy
samples and 50 event subscriptions on the server; sharing one took ``benchmarks/fleet.py
--campaigns 50`` from 162 to 100 ms of worker CPU per dial, and the Prefect server's from 214
to 152 ms (net of idle).

Prefect's observer, ``FlowRunSuspendingObserver``, watches any number of runs, as Prefect's
own runner uses it; so the in-process worker keeps one on its event loop and the engine
registers each run with it. A run is suspended exactly as before: the same observer, the same
request object, the same event and polling fallback. On a Prefect without this observer
nothing is replaced; if the shared watch cannot start, each run keeps its own.

Example:
    ```python
    async with shared_suspension_watch():
        ...  # run flow runs in this event loop
    ```
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import UUID

logger = logging.getLogger("daily_sip.worker")


@contextlib.asynccontextmanager
async def shared_suspension_watch() -> AsyncIterator[bool]:
    """While open, every flow run started in this process is watched by one shared observer.

    Yields whether the shared watch is in place.
    """
    try:
        import prefect.flow_engine as engine
        from prefect._flow_run_suspension import mark_flow_run_suspension_requested
        from prefect._internal.observers import FlowRunSuspendingObserver
    except ImportError:
        engine = None
    if engine is None or not hasattr(engine, "observe_flow_run_suspension"):
        yield False
        return

    requests: dict[UUID, Any] = {}

    def on_suspended(flow_run_id: UUID, state: Any) -> None:
        # What Prefect's per-run watch does: the engine's registry first, else the run's request.
        if not mark_flow_run_suspension_requested(flow_run_id, state) and flow_run_id in requests:
            requests[flow_run_id].mark_requested(state)

    try:
        observer = await FlowRunSuspendingObserver(on_suspended=on_suspended).__aenter__()
    except Exception as exc:
        logger.warning("one suspension watch for all runs could not start (%s); each run keeps its own", exc)
        yield False
        return

    @contextlib.contextmanager
    def observe(flow_run_id: UUID, suspension_request: Any, *_: Any, **__: Any) -> Iterator[None]:
        requests[flow_run_id] = suspension_request
        observer.add_in_flight_flow_run_id(flow_run_id)
        try:
            yield
        finally:
            observer.remove_in_flight_flow_run_id(flow_run_id)
            requests.pop(flow_run_id, None)

    per_run = engine.observe_flow_run_suspension
    engine.observe_flow_run_suspension = observe
    try:
        yield True
    finally:
        engine.observe_flow_run_suspension = per_run
        with contextlib.suppress(Exception):
            await observer.__aexit__(None, None, None)
