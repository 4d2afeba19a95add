"""One shared object per running event loop: what the campaigns of one process share.

Campaigns in one process (the in-process `daily-sip worker`, `daily-sip run`) run on one event
loop and share its event subscription, cancel poll and heartbeat; objects holding asyncio
tasks and locks must not cross loops, so each loop gets its own.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
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
