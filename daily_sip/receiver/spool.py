"""A durable queue between Daily's deliveries and Prefect: answer Daily as soon as the event is on disk.

Daily sends a webhook's events one at a time, in order, and counts a slow answer as a failed
delivery (https://docs.daily.co/reference/rest-api/webhooks: "respond 200 immediately and do
work asynchronously"). Answering only after Prefect acknowledged the event ties Daily's delivery
rate to the Prefect server's answer time: at 100 campaigns on a loaded server ``POST /events``
took ~1 s, so deliveries fell minutes behind and legs hit their ring timeout waiting for
``dialout.answered``. With a spool the receiver answers once the event is appended and
``fdatasync``-ed to a journal; a background sender hands spooled events to Prefect in batches
(one ``POST /events`` for many) and retries until Prefect takes them. A receiver killed with
``kill -9`` and restarted on the same directory sends what it had not yet handed over.

Journal format, one line each: ``E <event json>`` when an event is taken, ``D <id> <id> ...``
when Prefect acknowledged those ids. The file is emptied whenever nothing is pending and
rewritten with only the pending events when it grows large.

Example:
    ```python
    spool = Spool(Path("/var/lib/daily-sip/receiver"))
    spool.put(event)          # durable; answer Daily now
    await spool.run(emitter)  # background: hands everything to Prefect
    ```
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefect.events import Event

from .emitter import describe

logger = logging.getLogger("daily_sip.receiver")

JOURNAL = "events.journal"
# Events handed to Prefect in one POST /events.
BATCH = 50
# Rewrite the journal with only the pending events once it is larger than this.
COMPACT_BYTES = 8 * 1024 * 1024
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 10.0

BatchEmitter = Callable[[Sequence["Event"]], Awaitable[None]]


class SpoolBusyError(RuntimeError):
    """Another receiver holds this spool directory."""


class Spool:
    """Events taken from Daily and not yet acknowledged by Prefect, on disk and in memory."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / JOURNAL
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise SpoolBusyError(f"spool {self.directory} is in use by another receiver") from None
        self._pending: deque[tuple[str, Event]] = deque()
        self._wake = asyncio.Event()
        self._empty = asyncio.Event()
        self.recovered = self._replay()
        self.stats = {"spooled": 0, "sent": 0, "batches": 0, "send_failures": 0}

    def __repr__(self) -> str:
        return f"Spool({str(self.directory)!r}, pending={len(self._pending)})"

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _replay(self) -> int:
        from prefect.events import Event

        taken: dict[str, Event] = {}
        raw = self.path.read_bytes()
        for line in raw.splitlines():
            kind, _, rest = line.partition(b" ")
            try:
                if kind == b"E":
                    event = Event.model_validate_json(rest)
                    taken[str(event.id)] = event
                elif kind == b"D":
                    for event_id in rest.decode().split():
                        taken.pop(event_id, None)
            except ValueError:  # a line torn by a crash mid-write: it was never acknowledged to Daily
                continue
        self._pending.extend(taken.items())
        if not self._pending:
            self._empty.set()
        self._rewrite()
        if taken:
            logger.info("spool: %d event(s) taken before a restart are sent to Prefect now", len(taken))
        return len(taken)

    def _append(self, data: bytes) -> None:
        os.write(self._fd, data)
        os.fdatasync(self._fd)

    def _rewrite(self) -> None:
        """The journal holds exactly the pending events (atomically, via a new file)."""
        tmp = self.directory / (JOURNAL + ".new")
        with open(tmp, "wb") as out:
            for _, event in self._pending:
                out.write(b"E " + event.model_dump_json().encode() + b"\n")
            out.flush()
            os.fdatasync(out.fileno())
        fd = os.open(tmp, os.O_RDWR | os.O_APPEND)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody else can hold a file no one opened yet
        os.replace(tmp, self.path)
        os.close(self._fd)
        self._fd = fd

    def put(self, event: Event) -> None:
        """Append ``event`` to the journal and sync it: from here on it survives a crash."""
        self._append(b"E " + event.model_dump_json().encode() + b"\n")
        self._pending.append((str(event.id), event))
        self.stats["spooled"] += 1
        self._empty.clear()
        self._wake.set()

    def _acknowledged(self, ids: list[str]) -> None:
        for _ in ids:
            self._pending.popleft()
        self.stats["sent"] += len(ids)
        self.stats["batches"] += 1
        if not self._pending:
            os.ftruncate(self._fd, 0)  # nothing pending: the journal starts over
            self._empty.set()
        elif os.fstat(self._fd).st_size > COMPACT_BYTES:
            self._rewrite()
        else:
            self._append(b"D " + " ".join(ids).encode() + b"\n")

    async def run(self, emit: BatchEmitter) -> None:
        """Send pending events to Prefect in order, in batches, retrying until each is taken."""
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = await self._send_batch(emit)
            self._acknowledged([event_id for event_id, _ in batch])

    async def _send_batch(self, emit: BatchEmitter) -> list[tuple[str, Event]]:
        """Hand the next batch to Prefect, retried (0.5 s, doubling to 10 s) until it is taken;
        a batch Prefect refuses is sent one by one (`_isolate`). Returns the batch handed over."""
        # Here, not at the top: `daily_sip.tasks.retries` brings Prefect, which the receiver
        # loads only once it serves (importing it stays cheap, see app.py).
        from daily_sip.tasks.retries import doubling, retry

        batch: list[tuple[str, Event]] = []
        failures = 0

        async def send() -> None:
            # Taken afresh on every try: events spooled meanwhile join a batch that is not full.
            batch[:] = [item for _, item in zip(range(BATCH), self._pending, strict=False)]
            await emit([event for _, event in batch])

        def failed(exc: Exception, n: int, _pause: float) -> None:
            nonlocal failures
            failures += 1
            self.stats["send_failures"] += 1
            if n == 0:
                logger.warning(
                    "spool: Prefect did not take %d event(s) (%s); retrying, %d pending",
                    len(batch),
                    describe(exc, 200),
                    len(self._pending),
                )

        try:
            await retry(
                send,
                when=lambda exc: not getattr(exc, "refused", False),
                delay=doubling(RETRY_FIRST_SECONDS, RETRY_MAX_SECONDS),
                on_retry=failed,
            )
        except Exception as exc:  # refused: one event Prefect will never take must not hold up the others
            return await self._isolate(emit, batch, exc)
        if failures:
            logger.warning("spool: Prefect takes events again; %d pending", len(self._pending))
        return batch

    async def _isolate(
        self, emit: BatchEmitter, batch: list[tuple[str, Event]], exc: BaseException
    ) -> list[tuple[str, Event]]:
        """Send a refused batch one by one; an event refused on its own is dropped, with an error."""
        from daily_sip.tasks.retries import retry

        if len(batch) == 1:
            logger.error("spool: Prefect refused event %s (%s); dropped", batch[0][0], describe(exc, 200))
            return batch
        for event_id, event in batch:
            try:
                await retry(
                    functools.partial(emit, [event]),
                    when=lambda one: not getattr(one, "refused", False),
                    delay=lambda _n, _one: RETRY_FIRST_SECONDS,
                )
            except Exception as one:  # refused
                logger.error("spool: Prefect refused event %s (%s); dropped", event_id, describe(one, 200))
        return batch

    async def drained(self) -> None:
        """Returns once nothing is pending."""
        await self._empty.wait()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def batch_emitter(emitter: Any) -> BatchEmitter:
    """``emitter.emit_many`` when it has one (one request per batch), else one event at a time."""
    many = getattr(emitter, "emit_many", None)
    if many is not None:
        return many

    async def one_by_one(events: Sequence[Event]) -> None:
        import inspect

        for event in events:
            result = emitter(event)
            if inspect.isawaitable(result):
                await result

    return one_by_one
