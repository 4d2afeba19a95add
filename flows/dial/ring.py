"""What a leg is when its ring timeout passes with no ``dialout.answered``: a pure decision table.

No ``answered`` by the ring timeout may only mean its webhook is late or lost, so silence is never
read as "no answer" at once: the leg first gets `RECONCILE` (time for the event-history re-read),
then Daily's presence is asked whether the call is up. Daily does not document whether presence
lists a ringing call (https://docs.daily.co/reference/rest-api/presence), nor offers a REST read
of one leg, so a listed call is held like an answered one but reported ``unknown``.

The inputs, in the order they become known:

* ``reconciled``: the reconcile grace after the ring timeout has passed too;
* ``heard``: at least one event of this leg arrived (``dialout.connected`` etc.);
* ``run_heard``: at least one signed event of any leg reached this run;
* ``in_room``: presence lists the leg (True / False), could not be read (None), or was not asked
  yet (`NOT_ASKED`).

Example:
    >>> after_ring_timeout(reconciled=False, heard=True, run_heard=True)
    <Ring.RECONCILE: 'reconcile'>
    >>> after_ring_timeout(reconciled=True, heard=True, run_heard=True)
    <Ring.ASK_PRESENCE: 'ask presence'>
    >>> after_ring_timeout(reconciled=True, heard=True, run_heard=True, in_room=False)
    <Ring.NO_ANSWER: 'no answer'>
"""

from __future__ import annotations

import enum
from typing import Final, Literal


class Ring(enum.Enum):
    RECONCILE = "reconcile"
    """Wait a little longer and have the event history re-read."""
    ASK_PRESENCE = "ask presence"
    """Ask Daily's presence whether the leg is up, then decide again."""
    RUN_SILENT = "run silent"
    """No event reached the run at all: the webhook path is broken; say why (``no_events``)."""
    HELD_UNCONFIRMED = "held unconfirmed"
    """Presence lists the call: hold it like an answered call, status ``unknown``."""
    LEG_SILENT = "leg silent"
    """Other legs' events arrive but none of this one's: say what is known of it."""
    UNKNOWN = "unknown"
    """Presence could not be read: whether it is up cannot be told; hang up, ``unknown``."""
    NO_ANSWER = "no answer"
    """Events flowed, the leg was heard, presence does not list it: ``no_answer``."""


NotAsked = Literal["not asked"]
NOT_ASKED: Final[NotAsked] = "not asked"


def after_ring_timeout(
    *, reconciled: bool, heard: bool, run_heard: bool, in_room: bool | NotAsked | None = NOT_ASKED
) -> Ring:
    """The next step for a leg with no ``answered`` at its ring timeout (see the module docstring)."""
    if not reconciled:
        return Ring.RECONCILE
    if not heard and not run_heard:
        return Ring.RUN_SILENT
    if in_room == NOT_ASKED:
        return Ring.ASK_PRESENCE
    if in_room is True:
        return Ring.HELD_UNCONFIRMED
    if not heard:
        return Ring.LEG_SILENT
    if in_room is None:
        return Ring.UNKNOWN
    return Ring.NO_ANSWER
