"""The ring-timeout decision table (`flows/dial/ring.py`), row by row."""

from __future__ import annotations

import doctest

import pytest

from daily_sip.flows.dial import ring
from daily_sip.flows.dial.ring import NOT_ASKED, Ring, Unanswered, after_hang_up, after_ring_timeout

T, F = True, False

# reconciled, heard (this leg), run_heard (any leg), in_room -> step
TABLE = [
    (F, T, T, NOT_ASKED, Ring.RECONCILE),
    (F, F, F, NOT_ASKED, Ring.RECONCILE),  # silence is never a verdict before the reconcile grace
    (T, F, F, NOT_ASKED, Ring.RUN_SILENT),  # nothing reached the run: say why, no presence read
    (T, F, F, True, Ring.RUN_SILENT),
    # This leg's events came and no `answered`, live or re-read: no answer, whatever presence
    # shows (Daily does not say whether it lists a ringing call), and presence is not asked.
    (T, T, T, NOT_ASKED, Ring.NO_ANSWER),
    (T, T, F, NOT_ASKED, Ring.NO_ANSWER),
    (T, T, T, True, Ring.NO_ANSWER),
    (T, T, T, None, Ring.NO_ANSWER),
    (T, T, T, False, Ring.NO_ANSWER),
    (T, F, T, NOT_ASKED, Ring.ASK_PRESENCE),
    (T, F, T, True, Ring.HELD_UNCONFIRMED),  # nothing of this leg came, but presence lists it
    (T, F, T, False, Ring.LEG_SILENT),  # others' events flow, none of this leg's
    (T, F, T, None, Ring.LEG_SILENT),
]


@pytest.mark.parametrize(("reconciled", "heard", "run_heard", "in_room", "step"), TABLE)
def test_after_ring_timeout(reconciled, heard, run_heard, in_room, step):
    got = after_ring_timeout(reconciled=reconciled, heard=heard, run_heard=run_heard, in_room=in_room)
    assert got is step


@pytest.mark.parametrize(
    ("answered_late", "daily_error", "verdict"),
    [
        (F, F, Unanswered.NO_ANSWER),
        (F, T, Unanswered.DAILY_DECIDES),  # e.g. Daily's 408 crossed our hang-up
        (T, F, Unanswered.ANSWERED),  # its `answered` came after all
        (T, T, Unanswered.ANSWERED),
    ],
)
def test_after_hang_up(answered_late, daily_error, verdict):
    assert after_hang_up(answered_late=answered_late, daily_error=daily_error) is verdict


def test_every_step_is_reachable_and_the_doctest_holds():
    assert {row[-1] for row in TABLE} == set(Ring)
    assert doctest.testmod(ring).failed == 0
