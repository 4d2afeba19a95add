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
    """`limit` requests per `window` seconds (Daily's published numbers)."""

    name: str
    limit: int
    window: float


DIALOUT_START = RateClass("dialout-start", 5, 5.0)
ROOM_DELETE = RateClass("room-delete", 50, 30.0)
DEFAULT = RateClass("default", 100, 5.0)


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
        self._windows: dict[tuple[str, str], deque[float]] = {}

    @property
    def enabled(self) -> bool:
        return self.scale > 0

    def allowance(self, rate: RateClass) -> int:
        return max(1, math.floor(rate.limit * self.scale + 1e-9))

    def hit(self, key: str, rate: RateClass) -> float | None:
        """Count one request; None if allowed, else seconds until a slot frees up."""
        if not self.enabled:
            return None
        now = self.clock.now()
        window = self._windows.setdefault((key, rate.name), deque())
        while window and window[0] <= now - rate.window:
            window.popleft()
        if len(window) >= self.allowance(rate):
            return max(0.0, window[0] + rate.window - now)
        window.append(now)
        return None

    def reset(self) -> None:
        self._windows.clear()
