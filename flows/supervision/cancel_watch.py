"""Who tells a running campaign that it was cancelled, when no worker kills its process.

A run under a ``process`` worker is cancelled by its worker (which kills the process and runs
the on_cancellation hook). A run with nobody above it (`daily-sip run`, a notebook) or one of
many campaigns sharing a `daily-sip worker` process must notice "Cancel" in the UI itself.
Asking the API once a second per campaign was server load that grew with every campaign
waiting its turn, so one `CancelWatch` per process (per event loop) asks once a second for all
of them, in one ``read_flow_runs``.

A poll a second still leaves up to a second in which a cancelled run could start a call, so
before each dial-out a run asks `CancelWatch.cancelled` for a fresh read: asks that arrive
together share one ``read_flow_runs``, and a run found cancelling is stopped there and then.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from daily_sip.flows.supervision.per_loop import per_loop

logger = logging.getLogger("daily_sip.cancel_watch")

POLL_SECONDS = 1.0

# Why a watched run is being stopped.
ASKED = "asked"  # Cancel in the UI / API: the run cleans up and ends Cancelled with its report
WORKER_STOPPING = "worker-stopping"  # the in-process worker is shutting down


class CancelWatch:
    """One poll for every registered run of this process; see the module docstring.

    Example:
        ```python
        with cancel_watch().watching(run_id, lambda why: body.cancel()):
            ...  # the campaign; `why` is ASKED or WORKER_STOPPING
        ```
    """

    def __init__(self) -> None:
        self._runs: dict[str, Callable[[str], None]] = {}
        self._task: asyncio.Task | None = None
        self._asks: dict[str, list[asyncio.Future[bool]]] = {}
        self._reader: asyncio.Task | None = None

    @contextlib.contextmanager
    def watching(self, run_id: str, on_stop: Callable[[str], None]) -> Iterator[None]:
        self._runs[run_id] = on_stop
        if self._task is None or self._task.done():
            # A fresh context: the poller serves every run, not the one that happened to start it.
            self._task = asyncio.get_running_loop().create_task(
                self._poll(), name="daily-sip-cancel-watch", context=contextvars.Context()
            )
        try:
            yield
        finally:
            self._runs.pop(run_id, None)

    def stop_all(self, why: str) -> int:
        """Stop every watched run (the in-process worker's shutdown); returns how many."""
        runs, self._runs = self._runs, {}
        for on_stop in runs.values():
            on_stop(why)
        return len(runs)

    async def cancelled(self, run_id: str) -> bool:
        """A fresh read, made after this call: True (and the run stopped) if it was cancelled.

        Concurrent asks share one read. An unreadable API counts as not cancelled: the periodic
        poll (or the worker) still catches the cancel.

        Example:
            ```python
            if await cancel_watch().cancelled(run_id):
                raise asyncio.CancelledError  # no new call after a cancel request
            ```
        """
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._asks.setdefault(run_id, []).append(answer)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(
                self._read_asked(), name="daily-sip-cancel-check", context=contextvars.Context()
            )
        return await asyncio.shield(answer)

    async def _read_asked(self) -> None:
        from prefect.client.orchestration import get_client

        async with get_client() as client:
            while self._asks:
                asks, self._asks = self._asks, {}
                try:
                    found = await _cancelled_among(client, list(asks))
                except Exception as exc:  # a blip in the API must not end any campaign
                    logger.debug("cancel check failed: %s", exc)
                    found = set()
                for run_id, answers in asks.items():
                    if run_id in found:
                        on_stop = self._runs.pop(run_id, None)
                        if on_stop is not None:
                            on_stop(ASKED)
                    for answer in answers:
                        if not answer.done():
                            answer.set_result(run_id in found)

    async def _poll(self) -> None:
        from prefect.client.orchestration import get_client

        async with get_client() as client:
            # A poll, not a retry: a failed read is simply skipped until the next one.
            while self._runs:
                await asyncio.sleep(POLL_SECONDS)
                ids = list(self._runs)
                if not ids:
                    break
                try:
                    found = await _cancelled_among(client, ids)
                except Exception as exc:  # a blip in the API must not end any campaign
                    logger.debug("cancel poll failed: %s", exc)
                    continue
                for run_id in found:
                    on_stop = self._runs.pop(run_id, None)
                    if on_stop is not None:
                        on_stop(ASKED)


async def _cancelled_among(client: Any, ids: list[str]) -> set[str]:
    """Which of ``ids`` are cancelling or cancelled, in one read."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    runs = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[uuid.UUID(i) for i in ids]),
            state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[StateType.CANCELLING, StateType.CANCELLED])
            ),
        ),
        limit=len(ids),
    )
    return {str(run.id) for run in runs}


cancel_watch = per_loop(CancelWatch)
