"""One shared object per running event loop: what the campaigns of one process share.

Campaigns in one process (the in-process `daily-sip worker`, `daily-sip run`) run on one event
loop and share its event subscription, cancel poll and heartbeat; objects holding asyncio
tasks and locks must not cross loops, so each loop gets its own.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


def per_loop(factory: Callable[[], T]) -> Callable[[], T]:
    """A getter that returns this event loop's instance, made by ``factory`` on first use.

    >>> registry = per_loop(dict)
    >>> async def shared() -> bool:
    ...     return registry() is registry()
    >>> asyncio.run(shared())
    True
    """
    instances: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()

    def get() -> T:
        loop = asyncio.get_running_loop()
        instance = instances.get(loop)
        if instance is None:
            instance = instances[loop] = factory()
        return instance

    get.__doc__ = f"This event loop's {getattr(factory, '__name__', 'instance')} (made on first use)."
    return get


class AtMostEvery:
    """Runs an action for a key at most once per ``seconds``: the callers of one event loop that
    come within that time share the first one's success (a failure is not remembered), and
    callers that come together wait for the one already running it.

    >>> recent = AtMostEvery(60.0)
    >>> async def twice() -> list[bool]:
    ...     async def act() -> None: ...
    ...     return [await recent.run("k", act), await recent.run("k", act)]
    >>> asyncio.run(twice())
    [True, False]
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._done_at: dict[Hashable, float] = {}
        self._locks: dict[Hashable, asyncio.Lock] = {}

    async def run(self, key: Hashable, action: Callable[[], Awaitable[object]]) -> bool:
        """Whether ``action`` ran now (False: it succeeded for ``key`` within ``seconds``)."""
        async with self._locks.setdefault(key, asyncio.Lock()):
            done_at = self._done_at.get(key)
            if done_at is not None and time.monotonic() - done_at < self.seconds:
                return False
            await action()
            self._done_at[key] = time.monotonic()
            return True
