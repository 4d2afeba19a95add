"""The two ends of one dial-out attempt that must not be guessed: its start and its hang-up.

**One dial per attempt.** A ``dialOut/start`` that fails in a way that may have reached Daily
(5xx, read timeout: ``maybe_applied``) is never sent again blindly. The leg is looked for by
the attempt's own ``userId`` in every source Daily offers: the ``dialout.*`` webhook events routed
to the attempt's queue, and room presence (which Daily documents may lag by up to ~15 s, so it is
polled for `RESOLVE_SECONDS`). Found: the attempt follows that leg. Not found: the attempt is
reported ``unknown`` ("start outcome unknown") and not redialled; end-of-run cleanup still hangs
up any leg with the run's userId prefix. Starts that certainly did not reach Daily (429,
connection refused) are retried. https://docs.daily.co/reference/rest-api/rooms/dialout/start

**Hang-up until ended.** ``dialOut/stop`` is retried with backoff while Daily errors, and the
leg's session slot stays taken until Daily confirms the end (a ``dialout.stopped``/``error``
event, a "no dialout to stop" answer, or the leg gone from presence).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from logging import Logger, LoggerAdapter
from typing import Any

from daily_sip.flows.cleanup import actions as cleanup
from daily_sip.flows.collect.listener import DailyEvent
from daily_sip.tasks import DailyCredentials, DailyError, DailyNotFoundError
from daily_sip.tasks.dialout import astart_dial_out, astop_dial_out
from daily_sip.tasks.events import DIALOUT_LEG_ENDED
from daily_sip.tasks.models import StartDialOut
from daily_sip.tasks.presence import aget_room_presence
from daily_sip.tasks.retries import doubling, inline, persist, retry, until

# How long a start whose answer was lost is looked for: events come within seconds, presence
# may lag up to ~15 s behind Daily's state.
RESOLVE_SECONDS = 20.0
PRESENCE_POLL_SECONDS = 1.0
# A start that certainly did not reach Daily (429, connect error) is retried for this long.
START_RETRY_SECONDS = 30.0
# How long to wait for Daily's end event after a successful dialOut/stop before asking presence.
END_CONFIRM_SECONDS = 10.0

# The start task without its own retries: a retry of a start that may have taken effect is
# exactly the double dial this module exists to prevent.
_start_no_retry = astart_dial_out.with_options(retries=0)


class LegSlots(asyncio.Semaphore):
    """The room's session slots; a leg Daily never confirmed ended keeps its slot for good.

    Example:
        ```python
        slots = LegSlots(4)
        async with slots:
            ...
            if not ended:
                slots.keep()  # this hold is not given back when the block exits
        ```
    """

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self._kept = 0

    def keep(self) -> None:
        self._kept += 1

    def lower(self, by: int) -> None:
        """Fewer slots from now on: free ones are taken away, busy ones not given back."""
        for _ in range(by):
            if self._value > 0:
                self._value -= 1
            else:
                self._kept += 1

    def release(self) -> None:
        if self._kept:
            self._kept -= 1  # the leg may still be up: its slot stays taken
            return
        super().release()


class StartOutcomeUnknown(DailyError):
    """A start may have placed a call, but no trace of it was found; it is not dialled again."""


def _requeue(queue: asyncio.Queue[DailyEvent], first: DailyEvent) -> None:
    """Put ``first`` back at the head of the queue, the rest after it in order."""
    rest = []
    while not queue.empty():
        rest.append(queue.get_nowait())
    for event in (first, *rest):
        queue.put_nowait(event)


async def resolve_lost_start(
    room: str,
    user_id: str,
    queue: asyncio.Queue[DailyEvent],
    creds: DailyCredentials,
    wait: float | None = None,
) -> str | None:
    """The sessionId of the leg started with ``user_id``, from its events or presence; None if none.

    Example:
        ```python
        session = await resolve_lost_start("standup", "ab12cd34-0-1", router.queue("ab12cd34-0-1"), creds)
        ```
    """
    deadline = time.monotonic() + (RESOLVE_SECONDS if wait is None else wait)
    # A poll, not a retry: both sources are read again until the leg shows up or time is out.
    while True:
        try:
            event = await asyncio.wait_for(queue.get(), PRESENCE_POLL_SECONDS)
        except TimeoutError:
            event = None
        if event is not None:
            _requeue(queue, event)
            session = event.payload.get("session_id")
            if session:
                return str(session)
        try:
            presence = await inline(aget_room_presence, room, user_id=user_id, credentials=creds)
            for person in presence.data:
                if person.user_id == user_id:
                    return person.id
        except DailyError:
            pass  # presence is only one source; keep looking until the deadline
        if time.monotonic() >= deadline:
            return None


async def start_once(
    room: str,
    request: StartDialOut,
    queue: asyncio.Queue[DailyEvent],
    creds: DailyCredentials,
    logger: Logger | LoggerAdapter[Any],
    sending: Callable[[], AbstractAsyncContextManager[Any]] = contextlib.nullcontext,
) -> tuple[str, bool]:
    """Start one leg, never twice: returns ``(session_id, recovered)``.

    Raises the start's error when Daily refused it (nothing was dialled), or `StartOutcomeUnknown`
    when it may have dialled but the leg cannot be found. Each ``dialOut/start`` request is sent
    inside ``sending()`` (the dialler's last checks before a call, and one request at a time);
    the search for a lost start is not.

    Example:
        ```python
        session, recovered = await start_once("standup", request, router.queue(request.user_id), creds, log)
        ```
    """

    async def start() -> tuple[str, bool]:
        try:
            async with sending():
                started = await inline(_start_no_retry, room, request, credentials=creds)
            return started.session_id, bool(getattr(started, "recovered", False))
        except DailyError as exc:
            if not (getattr(exc, "maybe_applied", False) and request.user_id):
                raise  # surely not dialled: retried below if transient
            session = await resolve_lost_start(room, request.user_id, queue, creds)
            if session:
                logger.warning(
                    "start of %s answered %s, but its leg %s is up; following it, not dialling again",
                    request.user_id,
                    exc,
                    session,
                )
                return session, True
            raise StartOutcomeUnknown(
                f"start outcome unknown ({exc}); no leg with userId {request.user_id} found in "
                f"events or presence within {RESOLVE_SECONDS:.0f} s; not dialled again"
            ) from None

    return await retry(
        start,
        when=lambda e: isinstance(e, DailyError) and e.transient,  # StartOutcomeUnknown is not
        delay=until(time.monotonic() + START_RETRY_SECONDS, doubling(0.5, 8.0)),
    )


async def _ended_event(
    queue: asyncio.Queue[DailyEvent], wait: float, on_event: Callable[[DailyEvent], None] | None = None
) -> DailyEvent | None:
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        try:
            event = await asyncio.wait_for(queue.get(), left)
        except TimeoutError:
            return None
        if event.type in DIALOUT_LEG_ENDED:
            return event
        if on_event is not None:
            on_event(event)
    return None


async def hang_up_until_ended(
    room: str,
    session: str,
    user_id: str,
    queue: asyncio.Queue[DailyEvent],
    creds: DailyCredentials,
    logger: Logger | LoggerAdapter[Any],
    budget: float | None = None,
    on_event: Callable[[DailyEvent], None] | None = None,
) -> tuple[bool, DailyEvent | None]:
    """Hang up a leg and wait for Daily to confirm it ended: ``(ended, end event if one came)``.

    ``on_event`` sees the leg's other events that arrive meanwhile (a late ``answered``).

    ``ended`` is False only when Daily kept failing for the whole budget; the leg then stays
    the run's (its slot taken, in ``live``) and end-of-run cleanup or the sweeper retries.

    Example:
        ```python
        ended, event = await hang_up_until_ended("standup", session, user_id, queue, creds, log)
        ```
    """
    deadline = time.monotonic() + (cleanup.CLEANUP_BUDGET_SECONDS if budget is None else budget)
    # Not a retry loop (`persist` retries the failing stop): a round is one stop, then up to
    # END_CONFIRM_SECONDS of waiting for Daily to confirm the end, until it does or time is out.
    while True:
        try:
            ack = await persist(
                lambda: inline(astop_dial_out, room, session, credentials=creds),
                deadline,
                f"hang up {session}",
            )
        except DailyNotFoundError:
            # The room is gone or hosts no call: nothing is up; its end event may be in transit.
            return True, await _ended_event(queue, 2.0, on_event)
        except DailyError as exc:
            logger.warning("could not hang up %s: %s (cleanup will retry)", session, exc)
            return False, None
        if getattr(ack, "already_stopped", False):
            return True, await _ended_event(queue, 2.0, on_event)  # its end event may still be in transit
        event = await _ended_event(queue, END_CONFIRM_SECONDS, on_event)
        if event is not None:
            return True, event
        # No end event (late or lost webhook): ask presence before freeing the slot.
        try:
            presence = await inline(aget_room_presence, room, user_id=user_id, credentials=creds)
            if not any(p.id == session for p in presence.data):
                return True, None
        except DailyNotFoundError:
            return True, None
        except DailyError:
            pass
        if time.monotonic() >= deadline:
            logger.warning("leg %s not confirmed ended; cleanup will retry", session)
            return False, None
