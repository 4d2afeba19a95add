"""The start-window decision: a run past its window dials nothing (the whole run: tests/deployments)."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta

import pytest

from daily_sip.flows.campaign.model import Campaign, CampaignFileError, load_campaign
from daily_sip.flows.supervision import start_window
from daily_sip.flows.supervision.start_window import SCHEDULED_WINDOW_SECONDS, too_late, window_of

DUE = datetime(2026, 3, 2, 7, 55, tzinfo=UTC)
TARGETS = [{"sip_uri": "sip:bridge@example.com"}]


def test_doctests_hold():
    assert doctest.testmod(start_window).failed == 0


def test_the_window_is_inclusive_and_the_verdict_names_both_times():
    assert too_late(DUE, DUE + timedelta(seconds=300), 300) is None
    reason = too_late(DUE, DUE + timedelta(seconds=301), 300)
    assert reason is not None
    assert "due 2026-03-02 07:55:00 UTC" in reason and "started 2026-03-02 08:00:01 UTC" in reason
    assert "5 min 1 s late" in reason and "nothing was dialled" in reason


def test_early_start_and_no_window_are_never_late():
    assert too_late(DUE, DUE - timedelta(minutes=5), 10) is None  # a worker's prefetch
    assert too_late(DUE, DUE + timedelta(days=3), None) is None


def test_scheduled_runs_get_the_default_ad_hoc_runs_none():
    assert window_of(None, auto_scheduled=True) == SCHEDULED_WINDOW_SECONDS == 300
    assert window_of(None, auto_scheduled=False) is None
    assert window_of(30, auto_scheduled=True) == 30


def test_the_campaign_field():
    assert Campaign(targets=TARGETS).start_window_seconds is None
    assert Campaign(targets=TARGETS, start_window_seconds="").start_window_seconds is None  # the form
    assert Campaign(targets=TARGETS, start_window_seconds=120).start_window_seconds == 120
    for bad in (0, -5, float("nan"), float("inf"), 8 * 86400):
        with pytest.raises(ValueError, match="start_window_seconds"):
            Campaign(targets=TARGETS, start_window_seconds=bad)


def test_a_bad_window_in_a_campaign_file_is_one_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("targets: [{sip_uri: 'sip:a@example.com'}]\nstart_window_seconds: -1\n")
    with pytest.raises(CampaignFileError) as err:
        load_campaign(str(path))
    assert "start_window_seconds" in str(err.value)
