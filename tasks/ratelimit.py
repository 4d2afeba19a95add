"""Pacing Daily calls below Daily's published rate limits.

Each Daily rate class is a token bucket: ``burst`` calls at once, refilled at ``per_second``,
sized so that no sliding window Daily measures can overflow (burst + rate x window <= allowance).
When a Prefect API server is configured the buckets are Prefect global concurrency limits used
through ``rate_limit``, so every process and worker shares them; otherwise (ephemeral Prefect,
plain scripts) an in-process bucket does the same job for one process.

``DAILY_RATE_LIMIT_SCALE`` scales every bucket (2 = twice as fast, for accounts whose limits
Daily raised; 0 = no pacing, for a stand-in started with rate limits off).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from dataclasses import dataclass

logger = logging.getLogger("daily_sip.ratelimit")


@dataclass(frozen=True)
class RateClass:
    """One of Daily's rate-limit classes, as a token bucket."""

    key: str
    burst: int
    per_second: float
    allowance: str  # Daily's own words, for docs and the CLI

    @property
    def limit_name(self) -> str:
        return f"daily-api-{self.key}"


# Daily: "~1 req/s, or 5 per 5 s" for starting SIP/PSTN calls -> 1 + 1.0 x 4 s fits 5 in 5 s
# when calls are spaced by the bucket; measured with benchmarks/campaign_makespan.py.
DIALOUT_START = RateClass("dialout-start", burst=1, per_second=1.0, allowance="5 per 5 s (~1/s)")
# Daily: "~2 req/s, or 50 per 30 s" for DELETE /rooms/:name -> 5 + 1.5 x 30 = 50.
ROOM_DELETE = RateClass("room-delete", burst=5, per_second=1.5, allowance="50 per 30 s (~2/s)")
# Daily: "20 req/s, or 100 per 5 s" for everything else -> 10 + 18 x 5 = 100.
DEFAULT = RateClass("default", burst=10, per_second=18.0, allowance="100 per 5 s (20/s)")
RATE_CLASSES = (DIALOUT_START, ROOM_DELETE, DEFAULT)


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


def scaled(rate: RateClass, scale: float) -> tuple[int, float]:
    return max(1, round(rate.burst * scale)), rate.per_second * scale


class TokenBucket:
    """In-process limiter with the same shape as a Prefect rate limit with slot decay."""

    def __init__(self, burst: int, per_second: float) -> None:
        self.capacity = float(burst)
        self.per_second = per_second
        self.tokens = float(burst)
        self.updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.per_second)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.per_second)


# Buckets hold an asyncio.Lock, which belongs to one event loop.
_local: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, TokenBucket]] = (
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

    scale = rate_scale() if scale is None else scale
    names = []
    async with get_client() as client:
        for rate in RATE_CLASSES:
            burst, per_second = scaled(rate, scale)
            await client.upsert_global_concurrency_limit_by_name(
                rate.limit_name, limit=burst, slot_decay_per_second=per_second
            )
            names.append(rate.limit_name)
    return names


async def pace(rate: RateClass) -> None:
    """Wait until one more call of this class fits Daily's limit."""
    global _prefect_broken
    scale = rate_scale()
    if scale == 0:
        return
    api_url = _prefect_api_url()
    if api_url and not _prefect_broken:
        from prefect.concurrency.asyncio import rate_limit

        try:
            if (api_url, scale) not in _ensured:
                await ensure_rate_limits(scale)
                _ensured.add((api_url, scale))
            await rate_limit(rate.limit_name, strict=True)
            return
        except Exception as exc:  # server gone or refusing: keep pacing in-process, say so once
            _prefect_broken = True
            logger.warning("Prefect rate limits unavailable (%s); pacing in this process only", exc)
    loop = asyncio.get_running_loop()
    buckets = _local.setdefault(loop, {})
    bucket = buckets.get(rate.key)
    if bucket is None:
        bucket = buckets[rate.key] = TokenBucket(*scaled(rate, scale))
    await bucket.acquire()
