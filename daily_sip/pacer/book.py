"""Permit book: reservations that keep every window of one rate class, in time order."""

from __future__ import annotations

from collections import deque


class PermitBook:
    """At most ``count`` permits in any ``seconds`` window, for every ``(count, seconds)``.

    A permit is a reservation of a send time. Reservations are handed out in request order
    and never go backwards, so the log stays sorted and "the permit ``count`` places back is at
    least ``seconds`` old" is exactly Daily's sliding-window rule.

    Example:
        >>> book = PermitBook(((5, 5.0),))
        >>> [book.reserve(now=0.0) for _ in range(6)]
        [0.0, 0.0, 0.0, 0.0, 0.0, 5.0]
    """

    def __init__(self, windows: tuple[tuple[int, float], ...]) -> None:
        self.windows = windows
        self._times: deque[float] = deque(maxlen=max(n for n, _ in windows))
        self._blocked_until = 0.0
        self.granted = 0
        self.penalties = 0

    def reserve(self, now: float) -> float:
        """The earliest send time at or after ``now`` that fits every window; it is taken."""
        at = max(now, self._blocked_until, self._times[-1] if self._times else now)
        for count, seconds in self.windows:
            if len(self._times) >= count:
                at = max(at, self._times[-count] + seconds)
        self._times.append(at)
        self.granted += 1
        return at

    def penalize(self, now: float) -> None:
        """Daily answered 429 all the same: grant nothing for one full (longest) window."""
        self.penalties += 1
        self._blocked_until = max(self._blocked_until, now + max(s for _, s in self.windows))

    def backlog(self, now: float) -> float:
        """Seconds until the last reservation made so far is due (0 when idle)."""
        return max(0.0, (self._times[-1] if self._times else now) - now)
