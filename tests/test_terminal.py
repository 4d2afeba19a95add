"""The results table in the terminal prints every outcome and any bridge name as written."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import get_args

from rich.console import Console

from daily_sip.flows.report.model import CampaignReport, Outcome, TargetResult
from daily_sip.terminal import results_table


def test_results_table_prints_every_outcome_and_names_with_brackets_verbatim():
    outcomes = get_args(Outcome)
    targets = [
        TargetResult(
            index=i,
            sip_uri=f"sip:{i}@pbx.example.com",
            display_name=f"[Zoom] ops {i} [/]",
            status=status,
            detail=f"why [{status}]",
        )
        for i, status in enumerate(outcomes)
    ]
    report = CampaignReport(campaign="[weekly]", started_at=datetime.now(UTC), targets=targets, required=1)
    console = Console(width=250, record=True, color_system=None)
    console.print(results_table(report))
    text = console.export_text()
    for i, status in enumerate(outcomes):
        assert f"[Zoom] ops {i} [/]" in text
        assert status.replace("_", " ") in text
        assert f"why [{status}]" in text
    assert "[weekly]" in text
