"""Pacing Daily calls below Daily's published rate limits.

Each Daily rate class is a set of windows ("5 per 5 s", "20 per 1 s and 100 per 5 s"). Two layers:

* an in-process window limiter per class does the pacing: a call waits until it fits every
  window, each made 5 % longer than Daily's. It allows Daily's bursts (5 dial-outs at once)
  and stays inside the rule whether Daily counts sliding windows, fixed windows or tokens;
* when a Prefect API server is configured, a Prefect global concurrency limit per class
  (limit = the burst, slot decay = Daily's average rate) that every process and worker takes a
  slot from, so several campaigns together still keep Daily's average rate.

Why not the global limit alone: Prefect's server decays slots as ``floor(rate x seconds since
the row last changed)`` and every denial changes the row, so pollers keep resetting the clock;
measured on Prefect 3.9.1, a 0.9/s limit with four waiters let a call through only every ~2 s.
With the local limiter in front, one process never asks faster than the limit, so the shared
one only bites when several processes together exceed it.

``DAILY_RATE_LIMIT_SCALE`` scales every count (2 = twice the allowance, for accounts whose limits
Daily raised; 0 = no pacing, for a stand-in started with rate limits off).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("daily_sip.ratelimit")


@dataclass(frozen=True)
class RateClass:
    """One of Daily's rate-limit classes: every ``(count, seconds)`` window must hold."""

    key: str
    windows: tuple[tuple[int, float], ...]
    allowance: str  # Daily's own words, for docs and the CLI

    @property
    def limit_name(self) -> str:
        return f"daily-api-{self.key}"

    @property
    def burst(self) -> int:
        return min(count for count, _ in self.windows)

    @property
    def average_per_second(self) -> float:
        return min(count / seconds for count, seconds in self.windows)


# Daily: "~1 req/s, or 5 per 5 s window (bursts allowed within the window)" for starting SIP calls.
DIALOUT_START = RateClass("dialout-start", ((5, 5.0),), "5 per 5 s (~1/s)")
# Daily: "~2 req/s, or 50 per 30 s" for DELETE /rooms/:name; both are kept.
ROOM_DELETE = RateClass("room-delete", ((2, 1.0), (50, 30.0)), "50 per 30 s (~2/s)")
# Daily: "20 req/s, or 100 per 5 s" for everything else; both are kept.
DEFAULT = RateClass("default", ((20, 1.0), (100, 5.0)), "100 per 5 s (20/s)")
RATE_CLASSES = (DIALOUT_START, ROOM_DELETE, DEFAULT)

# Each local window is this much longer than Daily's, for clock skew and network jitter: a window
# limiter with margin stays inside Daily's rule whether Daily counts in sliding windows, fixed
# windows or a token bucket of the same size.
WINDOW_MARGIN = 0.05


def rate_scale() -> float:
    raw = os.environ.get("DAILY_RATE_LIMIT_SCALE", "1")
    try:
        scale = float(raw)
    except ValueError:
        msg = f"DAILY_RATE_LIMIT_SCALE={raw!r} is not a number (1 = Daily's limits, 0 = off)"
        raise ValueError(msg) from None
    if scale < 0:
        raise ValueError("DAILY_RATE_LIMIT_SCALE must be >= 0 (1 = Daily's limits, 0 = off)")
    return scale


def scaled(rate: RateClass, scale: float) -> tuple[tuple[int, float], ...]:
    """The local windows: counts scaled, each window a little longer than Daily's."""
    return tuple((max(1, round(n * scale)), w * (1 + WINDOW_MARGIN)) for n, w in rate.windows)


def shared_limit(rate: RateClass, scale: float) -> tuple[int, float]:
    """(limit, slot decay per second) of the Prefect global limit for this class."""
    return max(1, round(rate.burst * scale)), rate.average_per_second * scale


class WindowLimiter:
    """In-process limiter: at most ``count`` calls in any ``seconds`` window, for each window."""

    def __init__(self, windows: tuple[tuple[int, float], ...]) -> None:
        self.windows = windows
        self._calls: deque[float] = deque(maxlen=max(n for n, _ in windows))
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                wait = 0.0
                for count, seconds in self.windows:
                    if len(self._calls) >= count:
                        wait = max(wait, self._calls[-count] + seconds - now)
                if wait <= 0:
                    self._calls.append(now)
                    return
                await asyncio.sleep(wait)


# Limiters hold an asyncio.Lock, which belongs to one event loop.
_local: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, WindowLimiter]] = (
    weakref.WeakKeyDictionary()
)
_ensured: set[tuple[str, float]] = set()
_prefect_broken = False


def _prefect_api_url() -> str | None:
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


async def ensure_rate_limits(scale: float | None = None) -> list[str]:
    """Create (or correct) the global concurrency limits on the Prefect server. Idempotent.

    Also run by ``daily-sip setup-limits``; tasks call it on first use.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectAlreadyExists

    scale = rate_scale() if scale is None else scale
    names = []
    async with get_client() as client:
        for rate in RATE_CLASSES:
            limit, decay = shared_limit(rate, scale)
            try:
                await client.upsert_global_concurrency_limit_by_name(
                    rate.limit_name, limit=limit, slot_decay_per_second=decay
                )
            except ObjectAlreadyExists:  # another process created it between read and create
                await client.upsert_global_concurrency_limit_by_name(
                    rate.limit_name, limit=limit, slot_decay_per_second=decay
                )
            names.append(rate.limit_name)
    return names


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


async def _prefect_client() -> Any:
    """One long-lived Prefect client per event loop: a new one per call costs a TLS context."""
    from prefect.client.orchestration import get_client

    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = get_client()
        await client.__aenter__()
        _clients[loop] = client
    return client


async def _take_global_slot(rate: RateClass) -> None:
    """One slot of the Prefect global limit, waiting out refusals as the server's Retry-After says.

    Taken with ``PrefectClient.increment_concurrency_slots`` in ``rate_limit`` mode, the request
    ``prefect.concurrency.asyncio.rate_limit`` makes, without that function's acquisition
    service (about 2 s per call inside a task run on Prefect 3.9). The client itself retries the
    server's 503s.
    """
    from prefect.exceptions import PrefectHTTPStatusError

    client = await _prefect_client()
    while True:
        try:
            response = await client.increment_concurrency_slots(
                names=[rate.limit_name], slots=1, mode="rate_limit"
            )
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code != 423:  # 423 Locked: no slot free yet
                raise
            retry_after = exc.response.headers.get("Retry-After")
            await asyncio.sleep(float(retry_after) if retry_after else 1 / rate.average_per_second)
            continue
        if not response.json():
            raise LookupError(f"global concurrency limit {rate.limit_name} does not exist")
        return


async def pace(rate: RateClass) -> None:
    """Wait until one more call of this class fits Daily's limit; send the request right after.

    The shared slot is taken first and the local window last, so nothing with a variable delay
    (the Prefect API round trip) sits between the local window and the request it admits.
    """
    global _prefect_broken
    scale = rate_scale()
    if scale == 0:
        return
    api_url = _prefect_api_url()
    if api_url and not _prefect_broken:
        try:
            if (api_url, scale) not in _ensured:
                await ensure_rate_limits(scale)
                _ensured.add((api_url, scale))
            await _take_global_slot(rate)
        except Exception as exc:  # server gone or refusing: the local window still paces; say it once
            _prefect_broken = True
            logger.warning("Prefect global rate limits unavailable (%s); pacing in this process only", exc)
    limiters = _local.setdefault(asyncio.get_running_loop(), {})
    limiter = limiters.get(rate.key)
    if limiter is None or limiter.windows != scaled(rate, scale):
        limiter = limiters[rate.key] = WindowLimiter(scaled(rate, scale))
    await limiter.acquire()
