"""Daily's published rate-limit classes as sliding windows per API key.

The classes and numbers are Daily's (https://docs.daily.co/reference/rest-api, "Rate limits").
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from .clock import Clock, SystemClock


@dataclass(frozen=True)
class RateClass:
    """`limit` requests per `window` seconds, and every window in `also` at the same time
    (Daily's published numbers hold together: e.g. 20 per second *and* 100 per 5 s)."""

    name: str
    limit: int
    window: float
    also: tuple[tuple[int, float], ...] = ()

    @property
    def windows(self) -> tuple[tuple[int, float], ...]:
        return ((self.limit, self.window), *self.also)


# "Bursts allowed within the window" for call starts: only the 5 s window binds.
DIALOUT_START = RateClass("dialout-start", 5, 5.0)
ROOM_DELETE = RateClass("room-delete", 50, 30.0, also=((2, 1.0),))
DEFAULT = RateClass("default", 100, 5.0, also=((20, 1.0),))


def classify(method: str, route: str) -> RateClass:
    """Rate class of a route template such as `/rooms/{name}/dialOut/start`.

    Daily does not say which class covers dialOut/stop or sendDTMF; they fall under
    the default class here.
    """
    if method == "POST" and route.endswith("/dialOut/start"):
        return DIALOUT_START
    if method == "DELETE" and route == "/rooms/{name}":
        return ROOM_DELETE
    return DEFAULT


class RateLimiter:
    """Sliding-window log per (key, class); `scale` multiplies allowances, 0 = off.

    Refused requests do not enter the window, so a client that backs off recovers
    as soon as the oldest accepted request ages out.
    """

    def __init__(self, scale: float = 1.0, clock: Clock | None = None) -> None:
        self.scale = scale
        self.clock = clock or SystemClock()
        self._windows: dict[tuple[str, str, float], deque[float]] = {}

    @property
    def enabled(self) -> bool:
        return self.scale > 0

    def allowance(self, rate: RateClass, limit: int | None = None) -> int:
        return max(1, math.floor((rate.limit if limit is None else limit) * self.scale + 1e-9))

    def describe(self, rate: RateClass) -> str:
        return " and ".join(f"{self.allowance(rate, n)} per {w:g}s" for n, w in rate.windows)

    def hit(self, key: str, rate: RateClass) -> float | None:
        """Count one request in every window of its class; None if allowed, else seconds until
        a slot frees up in each full window."""
        if not self.enabled:
            return None
        now = self.clock.now()
        waits: list[float] = []
        logs = []
        for limit, span in rate.windows:
            log = self._windows.setdefault((key, rate.name, span), deque())
            while log and log[0] <= now - span:
                log.popleft()
            if len(log) >= self.allowance(rate, limit):
                waits.append(max(0.0, log[-self.allowance(rate, limit)] + span - now))
            logs.append(log)
        if waits:
            return max(waits)
        for log in logs:
            log.append(now)
        return None

    def reset(self) -> None:
        self._windows.clear()
