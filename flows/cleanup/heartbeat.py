"""Heartbeats: a run is alive for the sweeper while its process's beat is fresh.

A running campaign's process refreshes one Variable (``daily_sip_process_*``) every
`HEARTBEAT_SECONDS`; the sweeper treats a ledger whose process beat went stale for
`sweeper.GRACE_SECONDS` as orphaned. A ledger itself is rewritten only when its crash report changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from daily_sip.flows.cleanup.ledger import Ledger, put_variable, save_ledger
from daily_sip.flows.supervision.per_loop import per_loop

logger = logging.getLogger("daily_sip.cleanup")

# How often a running campaign refreshes its process's beat; the sweeper treats a ledger whose
# beat is older than `sweeper.GRACE_SECONDS` as orphaned.
HEARTBEAT_SECONDS = 10.0

PROCESS_PREFIX = "daily_sip_process_"


class ProcessBeat:
    """One heartbeat for every campaign of this process (event loop): a Variable refreshed every
    `HEARTBEAT_SECONDS` while any campaign runs here.

    Each ledger names it (``Ledger.process``), and the sweeper counts a ledger alive while its
    process's beat is fresh. A beat per campaign, written whether anything changed or not, was
    Prefect server load that grew with every campaign waiting its turn for Daily's rate limit;
    now a waiting campaign costs nothing and a ledger is written only when it changes.
    """

    def __init__(self) -> None:
        self.name = f"{PROCESS_PREFIX}{uuid.uuid4().hex[:16]}"
        self._stored = False
        self._users = 0
        self._task: asyncio.Task[None] | None = None

    async def join(self) -> str:
        self._users += 1
        if self._task is None:
            await self._write()  # fresh before the first ledger names it
            # A fresh context: the beat serves every campaign, not the one that started it.
            self._task = asyncio.get_running_loop().create_task(
                self._beat(), name="daily-sip-process-beat", context=contextvars.Context()
            )
        return self.name

    def leave(self) -> None:
        self._users -= 1
        if self._users <= 0 and self._task is not None:
            self._task.cancel()
            self._task = None
            asyncio.get_running_loop().create_task(self._drop(), context=contextvars.Context())

    async def _write(self, client: Any = None) -> None:
        value = {"alive_at": time.time(), "host": socket.gethostname(), "pid": os.getpid()}
        await put_variable(self.name, value, exists=self._stored, client=client)
        self._stored = True

    async def _beat(self) -> None:
        from prefect.client.orchestration import get_client

        # One client for the beat's life: a new one per beat costs a TLS context (~30 ms CPU).
        async with get_client() as client:
            while True:
                await asyncio.sleep(HEARTBEAT_SECONDS)
                try:
                    await self._write(client)
                except Exception as exc:  # a Prefect API blip must not end any campaign
                    logger.warning("could not refresh this process's heartbeat: %s", exc)

    async def _drop(self) -> None:
        from prefect.variables import Variable

        with contextlib.suppress(Exception):
            await Variable.aunset(self.name)


process_beat = per_loop(ProcessBeat)


class Heartbeat:
    """Keeps a run alive for the sweeper (its process's `ProcessBeat`) and its saved ledger's
    crash report current: the ledger is rewritten when ``snapshot`` changed, at most every
    ``every`` seconds.

    Example:
        ```python
        async with Heartbeat(ledger):
            ...  # provision, dial, clean up
        ```
    """

    def __init__(
        self,
        ledger: Ledger,
        every: float = HEARTBEAT_SECONDS,
        snapshot: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.ledger, self.every, self.snapshot = ledger, every, snapshot
        self._task: asyncio.Task[None] | None = None
        self._beat_of: ProcessBeat | None = None

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            async with self.ledger.lock:
                # Only a ledger that was saved (something was touched) and not yet settled.
                if self.ledger.alive_at is None or self.ledger._settled:
                    continue
                try:
                    if self.snapshot is not None:
                        report = self.snapshot()
                        if report == self.ledger.report:
                            continue  # the process's beat says the run is alive; nothing new
                        self.ledger.report = report
                    await save_ledger(self.ledger)
                except Exception as exc:  # a Prefect API blip must not end the campaign
                    logger.warning("could not refresh the cleanup ledger: %s", exc)

    async def __aenter__(self) -> Heartbeat:
        self._beat_of = process_beat()
        self.ledger.process = await self._beat_of.join()
        self._task = asyncio.create_task(self._beat())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._beat_of is not None:
            self._beat_of.leave()
