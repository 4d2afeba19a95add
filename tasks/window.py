"""Permit book: which calls of one rate class may still be counted by Daily, and when the next fits.

Daily's sliding-window rule as arithmetic, with no I/O and no clock of its own: the in-process
limiter (`daily_sip.tasks.ratelimit`) and the shared pacer (`daily_sip.pacer`) both keep their
windows in one of these.

Daily counts a request at some instant between the moment it was sent and the moment its answer
came back; where exactly (its edge, its handler, after a queue) is not documented and varies
with its load. So a permit is not a point in time but an interval: it opens when it is granted
(the call is sent after that) and closes when the caller reports the answer (Daily counted it
before that). A new permit fits a ``(count, seconds)`` window when fewer than ``count`` permits
closed less than ``seconds`` ago or are still open. That is Daily's sliding-window rule, kept
however late a caller sends or however long Daily takes to count, on any clock skew between
machines: only the pacer's own clock is read.

A permit whose caller never reports (it crashed, or its report was lost) closes on its own
``lease`` seconds after it was granted: longer than any Daily call is let run.

Example:
    >>> book = PermitBook(((2, 1.0),))
    >>> a, b = book.grant(now=0.0), book.grant(now=0.0)
    >>> book.wait(now=0.5)  # both still open: the earliest is when one of them might close
    30.5
    >>> book.done(a, now=0.2); book.done(b, now=0.3)
    >>> book.wait(now=0.5)  # one closed at 0.2: a window after that, only one may still count
    0.7
"""

from __future__ import annotations

import secrets
from typing import Any

# Longer than `DailyClient`'s own timeouts (15 s read, 5 s connect) plus a report's way back.
LEASE_SECONDS = 30.0


class PermitBook:
    """Open and recently closed permits of one rate class; every ``(count, seconds)`` window holds."""

    def __init__(self, windows: tuple[tuple[int, float], ...], lease: float = LEASE_SECONDS) -> None:
        self.windows = windows
        self.lease = lease
        self._open: dict[str, float] = {}  # permit id -> when it was granted
        self._closed: list[float] = []  # when permits closed, kept for the longest window
        self._blocked_until = 0.0
        self.granted = 0
        self.penalties = 0

    def _ends(self, now: float) -> list[float]:
        """Every permit that can still matter, as the latest instant Daily may have counted it."""
        for pid, granted in list(self._open.items()):
            if granted + self.lease <= now:  # never reported: the lease closed it
                del self._open[pid]
                self._closed.append(granted + self.lease)
        horizon = now - max(seconds for _, seconds in self.windows)
        self._closed = [end for end in self._closed if end > horizon]
        return self._closed + [granted + self.lease for granted in self._open.values()]

    def wait(self, now: float) -> float:
        """Seconds until one more permit fits (0 = now), assuming open permits run their lease.

        A `done` can only bring that earlier, so a waiter re-asks after every `done`.
        """
        until = max(now, self._blocked_until)
        ends = sorted(self._ends(now), reverse=True)
        for count, seconds in self.windows:
            if len(ends) >= count:
                until = max(until, ends[count - 1] + seconds)
        return until - now

    def grant(self, now: float) -> str:
        """Open a permit now (the caller checked `wait` is 0); returns its id for `done`."""
        pid = secrets.token_hex(8)
        self._open[pid] = now
        self.granted += 1
        return pid

    def done(self, pid: str, now: float) -> None:
        """The call of permit ``pid`` was answered (or given up on) by ``now``: it closes."""
        granted = self._open.pop(pid, None)
        if granted is not None:
            self._closed.append(max(now, granted))

    def penalize(self, now: float) -> None:
        """Daily answered 429 all the same: grant nothing for one full (longest) window."""
        self.penalties += 1
        self._blocked_until = max(self._blocked_until, now + max(s for _, s in self.windows))

    def open_at(self, now: float) -> int:
        """Permits still open at ``now`` (granted, neither reported nor past their lease)."""
        self._ends(now)
        return len(self._open)

    def state(self, now: float) -> dict[str, Any]:
        """What still counts, as plain data with times as ages (seconds before ``now``).

        Ages, not instants: the pacer's monotonic clock starts anew with its process, so a book
        written by one process is read by the next as ``from_state(state, now + elapsed)``.
        """
        self._ends(now)
        return {
            "windows": [list(window) for window in self.windows],
            "open": {pid: now - granted for pid, granted in self._open.items()},
            "closed": [now - end for end in self._closed],
            "blocked": max(0.0, self._blocked_until - now),
            "granted": self.granted,
            "penalties": self.penalties,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], now: float, lease: float = LEASE_SECONDS) -> PermitBook:
        """The book `state` described, ``now`` being the same instant on this process's clock.

        Example:
            >>> old = PermitBook(((1, 5.0),))
            >>> old.done(old.grant(now=100.0), now=101.0)
            >>> PermitBook.from_state(old.state(now=102.0), now=3.0).wait(now=3.0)  # 1 s + 3 s ago
            4.0
        """
        book = cls(tuple((int(c), float(s)) for c, s in state["windows"]), lease)
        book._open = {str(pid): now - float(age) for pid, age in state["open"].items()}
        book._closed = [now - float(age) for age in state["closed"]]
        book._blocked_until = now + float(state["blocked"])
        book.granted = int(state["granted"])
        book.penalties = int(state["penalties"])
        return book
