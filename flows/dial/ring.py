"""What a leg is when its ring timeout passes with no ``dialout.answered``: a pure decision table.

No ``answered`` by the ring timeout may only mean its webhook is late or lost, so silence is never
read at once: the leg first gets `RECONCILE` (time for the event-history re-read). Then:

* **This leg was heard** (its ``dialout.connected`` or any other of its events arrived): the room's
  event stream demonstrably carried this leg, and neither the live stream nor the history re-read
  holds an ``answered``. That is ``no_answer``: the ringing call is hung up. Presence is not asked:
  Daily does not say whether it lists a call that is still ringing
  (https://docs.daily.co/reference/rest-api/presence), so a listed call proves nothing. The verdict
  still yields to what the hang-up brings: an ``answered`` that arrives after all (status
  ``answered``) or Daily's own end reason (``dialout.error``, e.g. 486 busy); see `after_hang_up`.
* **Nothing of this leg was heard, but other events reached the run**: Daily's presence is asked
  whether the call is up; listed means held like an answered call but reported ``unknown``.
* **Nothing reached the run at all**: the webhook path is broken; ``no_events`` says why.

So ``unknown`` is kept for legs whose own event stream was silent. The inputs, in the order they
become known:

* ``reconciled``: the reconcile grace after the ring timeout has passed too;
* ``heard``: at least one event of this leg arrived (``dialout.connected`` etc.);
* ``run_heard``: at least one signed event of any leg reached this run;
* ``in_room``: presence lists the leg (True / False), could not be read (None), or was not asked
  yet (`NOT_ASKED`).

Example:
    >>> after_ring_timeout(reconciled=False, heard=True, run_heard=True)
    <Ring.RECONCILE: 'reconcile'>
    >>> after_ring_timeout(reconciled=True, heard=True, run_heard=True)
    <Ring.NO_ANSWER: 'no answer'>
    >>> after_ring_timeout(reconciled=True, heard=False, run_heard=True)
    <Ring.ASK_PRESENCE: 'ask presence'>
    >>> after_hang_up(answered_late=False, daily_error=False)
    <Unanswered.NO_ANSWER: 'no_answer'>
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
    """None of this leg's events came, yet presence lists it: hold it like an answered call, ``unknown``."""
    LEG_SILENT = "leg silent"
    """Other legs' events arrive but none of this one's, and presence does not list it: say what is known."""
    NO_ANSWER = "no answer"
    """The leg was heard, no ``answered`` came (live or re-read): hang up, ``no_answer`` (`after_hang_up`)."""


NotAsked = Literal["not asked"]
NOT_ASKED: Final[NotAsked] = "not asked"


def after_ring_timeout(
    *, reconciled: bool, heard: bool, run_heard: bool, in_room: bool | NotAsked | None = NOT_ASKED
) -> Ring:
    """The next step for a leg with no ``answered`` at its ring timeout (see the module docstring)."""
    if not reconciled:
        return Ring.RECONCILE
    if heard:
        return Ring.NO_ANSWER
    if not run_heard:
        return Ring.RUN_SILENT
    if in_room == NOT_ASKED:
        return Ring.ASK_PRESENCE
    if in_room is True:
        return Ring.HELD_UNCONFIRMED
    return Ring.LEG_SILENT


class Unanswered(enum.Enum):
    """The verdict on a leg hung up as `Ring.NO_ANSWER`, once the hang-up is over."""

    ANSWERED = "answered"
    """Its ``dialout.answered`` came after all (late webhook): it was answered."""
    DAILY_DECIDES = "daily decides"
    """Daily's own end event (``dialout.error`` with its reason) came while hanging up."""
    NO_ANSWER = "no_answer"
    """Nothing contradicts the ring-timeout verdict."""


def after_hang_up(*, answered_late: bool, daily_error: bool) -> Unanswered:
    """What a leg hung up at its ring timeout was, given what the hang-up brought."""
    if answered_late:
        return Unanswered.ANSWERED
    if daily_error:
        return Unanswered.DAILY_DECIDES
    return Unanswered.NO_ANSWER
