"""Who tells a running campaign that it was cancelled, when no worker kills its process.

A run under a ``process`` worker is cancelled by its worker (which kills the process and runs
the on_cancellation hook). A run with nobody above it (`daily-sip run`, a notebook) or one of
many campaigns sharing a `daily-sip worker` process must notice "Cancel" in the UI itself.

One `CancelWatch` per process (per event loop) serves all of them with Prefect's own
``FlowRunCancellingObserver``, the one Prefect's runner uses: a subscription to the server's
``prefect.flow-run.Cancelling`` events, and reads of the runs' states only while that
subscription is down (every `FALLBACK_POLL_SECONDS`) and when it (re)connects. A run whose
cancel came before it was registered is found by one read of its state right after it is
registered. Polling once a second instead was a request per second per process for as long as
campaigns ran: with two workers at M = 100 it was the largest share of the Prefect server's CPU
that did not scale with the work.

Events arrive a moment after the cancel is committed, so before each dial-out a run also asks
`CancelWatch.cancelled` for a fresh read: asks that arrive together share one
``read_flow_runs``, and a run found cancelling is stopped there and then.
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

# While the event subscription is down, runs' states are read this often; while it is being
# set up, more often (a run's first seconds).
FALLBACK_POLL_SECONDS = 2.0
STARTUP_POLL_SECONDS = 1.0
# The subscription is kept this long after the last watched run ends, for the next one.
IDLE_CLOSE_SECONDS = 60.0

# Why a watched run is being stopped.
ASKED = "asked"  # Cancel in the UI / API: the run cleans up and ends Cancelled with its report
WORKER_STOPPING = "worker-stopping"  # the in-process worker is shutting down


class CancelWatch:
    """One cancel subscription for every registered run of this process; see the module docstring.

    Example:
        ```python
        with cancel_watch().watching(run_id, lambda why: body.cancel()):
            ...  # the campaign; `why` is ASKED or WORKER_STOPPING
        ```
    """

    def __init__(self) -> None:
        self._runs: dict[str, Callable[[str], None]] = {}
        self._task: asyncio.Task | None = None
        self._observer: Any = None
        self._new: set[str] = set()  # registered since the last check of their state
        self._changed = asyncio.Event()
        self._closing = False  # the watch is ending: a run registered now needs a new one
        self._asks: dict[str, list[asyncio.Future[bool]]] = {}
        self._reader: asyncio.Task | None = None

    @contextlib.contextmanager
    def watching(self, run_id: str, on_stop: Callable[[str], None]) -> Iterator[None]:
        self._runs[run_id] = on_stop
        self._new.add(run_id)
        if self._observer is not None:
            self._observer.add_in_flight_flow_run_id(uuid.UUID(run_id))
        self._changed.set()
        if self._task is None or self._task.done() or self._closing:
            self._closing = False
            # A fresh context: the watch serves every run, not the one that happened to start it.
            self._task = asyncio.get_running_loop().create_task(
                self._watch(), name="daily-sip-cancel-watch", context=contextvars.Context()
            )
        try:
            yield
        finally:
            self._runs.pop(run_id, None)
            self._new.discard(run_id)
            if self._observer is not None:
                self._observer.remove_in_flight_flow_run_id(uuid.UUID(run_id))
            self._changed.set()

    def stop_all(self, why: str) -> int:
        """Stop every watched run (the in-process worker's shutdown); returns how many."""
        runs, self._runs = self._runs, {}
        for on_stop in runs.values():
            on_stop(why)
        return len(runs)

    def _stop(self, flow_run_id: uuid.UUID | str) -> None:
        on_stop = self._runs.pop(str(flow_run_id), None)
        if on_stop is not None:
            on_stop(ASKED)

    async def cancelled(self, run_id: str) -> bool:
        """A fresh read, made after this call: True (and the run stopped) if it was cancelled.

        Concurrent asks share one read. An unreadable API counts as not cancelled: the event
        subscription (or the worker) still catches the cancel.

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
                found = await _cancelled_among(client, list(asks))
                for run_id, answers in asks.items():
                    if run_id in found:
                        self._stop(run_id)
                    for answer in answers:
                        if not answer.done():
                            answer.set_result(run_id in found)

    async def _watch(self) -> None:
        from prefect.client.orchestration import get_client

        mine = None
        # Until the subscription is up (a websocket and a first read of the runs' states: seconds
        # on a busy server), the runs' states are read instead.
        bridge = asyncio.create_task(self._poll(until_subscribed=True))
        try:
            # Prefect's runner's observer (3.9): private, so its absence falls back to polling.
            from prefect._internal.observers import FlowRunCancellingObserver

            async with (
                get_client() as client,
                FlowRunCancellingObserver(
                    on_cancelling=self._stop, polling_interval=FALLBACK_POLL_SECONDS
                ) as observer,
            ):
                self._observer = mine = observer
                bridge.cancel()
                for run_id in list(self._runs):
                    observer.add_in_flight_flow_run_id(uuid.UUID(run_id))
                while True:
                    if self._new:
                        await self._check_new(client)
                    if not self._runs:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._changed.wait(), IDLE_CLOSE_SECONDS)
                        if not self._runs and not self._changed.is_set():
                            self._closing, self._observer = True, None
                            return
                    self._changed.clear()
                    if not self._new:
                        await self._changed.wait()
        except Exception as exc:  # the subscription could not be had: fall back to reading states
            logger.warning("cancel subscription unavailable (%s); reading run states instead", exc)
            bridge.cancel()
            if self._observer is mine:
                self._observer = None
            await self._poll()
        finally:
            bridge.cancel()
            if self._observer is mine:
                self._observer = None

    async def _check_new(self, client: Any) -> None:
        """Runs cancelled before they were registered sent their event before anyone listened."""
        ids, self._new = list(self._new), set()
        for run_id in await _cancelled_among(client, ids):
            self._stop(run_id)

    async def _poll(self, until_subscribed: bool = False) -> None:
        from prefect.client.orchestration import get_client

        every = STARTUP_POLL_SECONDS if until_subscribed else FALLBACK_POLL_SECONDS
        async with get_client() as client:
            while self._runs and not (until_subscribed and self._observer is not None):
                await asyncio.sleep(every)
                for run_id in await _cancelled_among(client, list(self._runs)):
                    self._stop(run_id)


async def _cancelled_among(client: Any, ids: list[str]) -> set[str]:
    """Which of ``ids`` are cancelling or cancelled, in one read (none if the API cannot say)."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    if not ids:
        return set()
    try:
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=ids),
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.CANCELLING, StateType.CANCELLED])
                ),
            ),
            limit=len(ids),
        )
    except Exception as exc:  # a blip in the API must not end any campaign
        logger.debug("cancel check failed: %s", exc)
        return set()
    return {str(run.id) for run in runs}


cancel_watch = per_loop(CancelWatch)
