"""The pacer's book in Redis: several pacer processes serve one account's exact windows.

Why Redis (rather than the PostgreSQL that Prefect already has): a grant is one Lua script,
run atomically by Redis's single thread, so it reads and changes the book in one round trip
(a fraction of a millisecond, docs/ha.md) with no row locks or transaction retries; the script
reads Redis's own clock (``TIME``), so every pacer measures the window on one clock whatever
the skew between their machines; pub/sub wakes every pacer's waiters when a permit closes on
any of them; and the several-server Prefect setup needs Redis anyway (``prefect-redis``). Run
it with ``appendonly yes`` so a Redis restart keeps the book (see docs/ha.md).

The arithmetic is `daily_sip.tasks.window.PermitBook`'s, the same rule written in Lua: a permit is
open from its grant until its answer is reported (or its lease ends), and a new one fits every
``(count, seconds)`` window when fewer than ``count`` permits closed less than ``seconds`` ago or
are still open. Keys per book, ``<prefix>:<book>`` with ``book`` a hash of account and rate class
(a permit id is ``<book>-<id>``, so any pacer can close it):

* ``:open`` hash permit id -> grant time; ``:closed`` sorted set of close times;
* ``:meta`` hash with ``blocked`` (until when a 429 stops grants), ``granted``, ``penalties``.

Example:
    ```python
    store = RedisBooks("redis://127.0.0.1:6379/0")
    book = store.book("default", "dialout-start", ((5, 5.0),))
    pid, wait = await book.try_grant()   # (id, 0.0) or (None, seconds until one may fit)
    await store.done(pid)
    ```
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any

from daily_sip.tasks.window import LEASE_SECONDS

logger = logging.getLogger("daily_sip.pacer")

KEY_PREFIX = "daily-sip:pacer"

# Every permit that can still matter, as the latest instant Daily may have counted it (an open
# permit: its grant + lease; a lease that ran out closes it), then the earliest instant one more
# fits every window. KEYS: open, closed, meta. ARGV: windows json, lease, mode ("grant" grants
# when it fits), permit id. Returns {id or "", wait as a string}.
_GRANT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local windows = cjson.decode(ARGV[1])
local lease = tonumber(ARGV[2])
local longest = 0
for _, w in ipairs(windows) do longest = math.max(longest, w[2]) end
local open = redis.call('HGETALL', KEYS[1])
local ends = {}
for i = 1, #open, 2 do
  local granted = tonumber(open[i + 1])
  if granted + lease <= now then
    redis.call('HDEL', KEYS[1], open[i])
    redis.call('ZADD', KEYS[2], granted + lease, open[i])
  else
    table.insert(ends, granted + lease)
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - longest)
local closed = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 2, #closed, 2 do table.insert(ends, tonumber(closed[i])) end
table.sort(ends, function(a, b) return a > b end)
local untl = math.max(now, tonumber(redis.call('HGET', KEYS[3], 'blocked') or '0'))
for _, w in ipairs(windows) do
  if #ends >= w[1] then untl = math.max(untl, ends[w[1]] + w[2]) end
end
local wait = untl - now
if ARGV[3] == 'grant' and wait <= 0 then
  redis.call('HSET', KEYS[1], ARGV[4], now)
  redis.call('HINCRBY', KEYS[3], 'granted', 1)
  redis.call('EXPIRE', KEYS[1], math.ceil(lease + longest) + 60)
  redis.call('EXPIRE', KEYS[2], math.ceil(lease + longest) + 60)
  redis.call('EXPIRE', KEYS[3], 86400)
  return {ARGV[4], '0'}
end
return {'', tostring(math.max(wait, 0))}
"""

# KEYS: open, closed. ARGV: permit id. Closes it now (never before its grant); 1 if it was open.
_DONE = """
local granted = redis.call('HGET', KEYS[1], ARGV[1])
if not granted then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], math.max(now, tonumber(granted)), ARGV[1])
return 1
"""

# KEYS: meta. ARGV: seconds. Nothing is granted for one longest window from now.
_PENALIZE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local blocked = tonumber(redis.call('HGET', KEYS[1], 'blocked') or '0')
redis.call('HSET', KEYS[1], 'blocked', math.max(blocked, now + tonumber(ARGV[1])))
redis.call('HINCRBY', KEYS[1], 'penalties', 1)
redis.call('EXPIRE', KEYS[1], 86400)
return 1
"""


def book_id(account: str, rate: str) -> str:
    """A short name for one account's rate class, safe in a URL path and a Redis key."""
    return hashlib.sha256(f"{account}\n{rate}".encode()).hexdigest()[:16]


class RedisBook:
    """One account's rate class, kept in Redis (see the module docstring)."""

    def __init__(self, store: RedisBooks, account: str, rate: str, windows: tuple[tuple[int, float], ...]):
        self.store = store
        self.id = book_id(account, rate)
        self.windows = windows
        self.keys = [f"{store.prefix}:{self.id}:{part}" for part in ("open", "closed", "meta")]

    async def try_grant(self, grant: bool = True) -> tuple[str | None, float]:
        """``(permit id, 0.0)`` if one fits now (and ``grant``), else ``(None, seconds to wait)``."""
        import secrets

        pid = f"{self.id}-{secrets.token_hex(8)}"
        args: list[str | float] = [json.dumps(self.windows), LEASE_SECONDS, "grant" if grant else "peek", pid]
        got, wait = await self.store.grant_script(keys=self.keys, args=args)
        got = got.decode() if isinstance(got, bytes) else got
        return (got or None), float(wait)

    async def penalize(self) -> None:
        await self.store.penalize_script(keys=self.keys[2:], args=[max(s for _, s in self.windows)])
        await self.store.redis.publish(self.store.channel, self.id)

    async def stats(self) -> dict[str, int]:
        meta = await self.store.redis.hgetall(self.keys[2])
        return {
            "granted": int(meta.get(b"granted", 0)),
            "after_429": int(meta.get(b"penalties", 0)),
            "open": int(await self.store.redis.hlen(self.keys[0])),
        }


class RedisBooks:
    """The connection, the scripts and the "a permit closed" channel shared by every book."""

    def __init__(self, url: str, prefix: str = KEY_PREFIX) -> None:
        import redis.asyncio as aioredis

        self.redis: Any = aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.prefix = prefix
        self.channel = f"{prefix}:closed"
        self.grant_script = self.redis.register_script(_GRANT)
        self.done_script = self.redis.register_script(_DONE)
        self.penalize_script = self.redis.register_script(_PENALIZE)

    def book(self, account: str, rate: str, windows: tuple[tuple[int, float], ...]) -> RedisBook:
        return RedisBook(self, account, rate, windows)

    async def done(self, pid: str) -> bool:
        """Close permit ``pid`` (granted by any pacer of this Redis); False if it was not open."""
        book, _, _own = pid.partition("-")
        keys = [f"{self.prefix}:{book}:{part}" for part in ("open", "closed")]
        closed = bool(await self.done_script(keys=keys, args=[pid]))
        if closed:
            await self.redis.publish(self.channel, book)
        return closed

    async def listen(self, woken: Any) -> None:
        """Call ``woken(book id)`` for every permit closed (or 429 reported) by any pacer."""
        while True:
            try:
                pubsub = self.redis.pubsub()
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        data = message["data"]
                        woken(data.decode() if isinstance(data, bytes) else str(data))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarting: waiters still wake on their own timers
                logger.warning("pacer: Redis channel lost (%s); resubscribing in 1 s", exc)
                await asyncio.sleep(1.0)

    async def ping(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        await self.redis.aclose()
