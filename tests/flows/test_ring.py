"""The ring-timeout decision table (`flows/dial/ring.py`), row by row."""

from __future__ import annotations

import doctest

import pytest

from daily_sip.flows.dial import ring
from daily_sip.flows.dial.ring import NOT_ASKED, Ring, after_ring_timeout

T, F = True, False

# reconciled, heard (this leg), run_heard (any leg), in_room -> step
TABLE = [
    (F, T, T, NOT_ASKED, Ring.RECONCILE),
    (F, F, F, NOT_ASKED, Ring.RECONCILE),  # silence is never a verdict before the reconcile grace
    (T, F, F, NOT_ASKED, Ring.RUN_SILENT),  # nothing reached the run: say why, no presence read
    (T, F, F, True, Ring.RUN_SILENT),
    (T, T, T, NOT_ASKED, Ring.ASK_PRESENCE),
    (T, F, T, NOT_ASKED, Ring.ASK_PRESENCE),
    (T, T, F, NOT_ASKED, Ring.ASK_PRESENCE),
    (T, T, T, True, Ring.HELD_UNCONFIRMED),  # listed: up, its answer lost or still ringing
    (T, F, T, True, Ring.HELD_UNCONFIRMED),
    (T, F, T, False, Ring.LEG_SILENT),  # others' events flow, none of this leg's
    (T, F, T, None, Ring.LEG_SILENT),
    (T, T, T, None, Ring.UNKNOWN),  # presence unreadable: cannot tell
    (T, T, T, False, Ring.NO_ANSWER),
    (T, T, F, False, Ring.NO_ANSWER),
]


@pytest.mark.parametrize(("reconciled", "heard", "run_heard", "in_room", "step"), TABLE)
def test_after_ring_timeout(reconciled, heard, run_heard, in_room, step):
    got = after_ring_timeout(reconciled=reconciled, heard=heard, run_heard=run_heard, in_room=in_room)
    assert got is step


def test_every_step_is_reachable_and_the_doctest_holds():
    assert {row[-1] for row in TABLE} == set(Ring)
    assert doctest.testmod(ring).failed == 0
