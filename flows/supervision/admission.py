"""A worker's place for a campaign that is still starting its calls.

Daily starts one dial-out per second per account (https://docs.daily.co/reference/rest-api/rooms/dialout/start):
a 5-bridge campaign takes ~5 s of that window. Campaigns a worker takes beyond what the window
can serve only wait in memory, each paying Prefect writes (states, ledger, board) while it
waits. So the in-process worker (`daily_sip.worker`) counts against its ``--limit`` only the
campaigns that have not yet started every call: once a campaign has, it frees its place for the
next one and holds its calls (for seconds or for a whole meeting) outside the limit.

The worker puts the release in the run's context (`admitted`); the campaign calls `all_started`.
Anywhere else (`daily-sip run`, a ``process`` worker) both are no-ops.

Example:
    ```python
    with admitted(lambda: print("place freed")):
        task = asyncio.create_task(run_campaign())  # the task's context carries the release
    ...
    all_started()  # inside the campaign, once every target's first dial-out was started
    ```
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

_release: contextvars.ContextVar[list[Callable[[], None]] | None] = contextvars.ContextVar(
    "daily_sip_admission", default=None
)


@contextlib.contextmanager
def admitted(release: Callable[[], None]) -> Iterator[None]:
    """Tasks created inside carry ``release``: the first `all_started` in them calls it once."""
    token = _release.set([release])
    try:
        yield
    finally:
        _release.reset(token)


def all_started() -> None:
    """This campaign has started every call: give its place back to the worker (once)."""
    pending = _release.get()
    if pending:
        pending.pop()()
