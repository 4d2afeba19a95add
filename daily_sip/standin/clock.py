"""Time and delayed work for the stand-in, both injectable.

Everything runs on one thread (the server's event loop), so nothing here locks. The server uses
the wall clock and the running loop's `call_later`; tests use `FakeClock` and `ManualScheduler`
to drive a whole call with `ManualScheduler.advance()`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...


class SystemClock:
    """Wall-clock unix seconds."""

    def now(self) -> float:
        return time.time()


class FakeClock:
    """A clock that only moves when told to (for tests)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    def call_later(self, delay: float, fn: Callable[[], None]) -> TimerHandle: ...


class AsyncioScheduler:
    """Runs callbacks on the running event loop via `loop.call_later`."""

    def call_later(self, delay: float, fn: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, delay), fn)


@dataclass(order=True)
class _ManualTimer:
    due: float
    seq: int
    fn: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class ManualScheduler:
    """Deterministic scheduler for tests: nothing runs until `advance()`."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self._heap: list[_ManualTimer] = []
        self._seq = itertools.count()

    def call_later(self, delay: float, fn: Callable[[], None]) -> TimerHandle:
        timer = _ManualTimer(self.clock.now() + max(0.0, delay), next(self._seq), fn)
        heapq.heappush(self._heap, timer)
        return timer

    def advance(self, seconds: float) -> None:
        """Move the clock forward, firing due callbacks in time order."""
        target = self.clock.now() + seconds
        while self._heap and self._heap[0].due <= target:
            timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            self.clock.t = max(self.clock.t, timer.due)
            timer.fn()
        self.clock.t = target

    @property
    def pending(self) -> int:
        return sum(1 for t in self._heap if not t.cancelled)


def iso(ts: float | None) -> str | None:
    """ISO 8601 with milliseconds and `Z`, like the `created_at` of Daily's room object
    (https://docs.daily.co/reference/rest-api/rooms)."""
    if ts is None:
        return None
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
