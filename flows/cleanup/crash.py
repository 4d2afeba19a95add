"""Cleanup for runs that ended without cleaning up themselves: the Prefect hook and the crash report."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from daily_sip.flows.cleanup.actions import CleanupResult, clean_up
from daily_sip.flows.cleanup.ledger import Ledger, credentials_for, load_ledger, settle_ledger

logger = logging.getLogger("daily_sip.cleanup")


async def publish_crash_report(ledger: Ledger, result: CleanupResult, why: str) -> None:
    """Publish the per-target report of a run that could not publish it itself (from its ledger)."""
    from daily_sip.flows.report.model import CampaignReport
    from daily_sip.flows.report.publish import publish_for_run

    if not ledger.report:
        return
    try:
        report = CampaignReport.model_validate(ledger.report)
    except ValueError:
        return
    report.error = report.error or why
    report.finished_at = report.finished_at or datetime.now(UTC)
    for t in report.targets:
        if t.status == "unknown":
            t.status, t.detail = "canceled", t.detail or f"not finished: {why}"
    report.cleanup, report.cleanup_pending = result.actions, result.pending
    await publish_for_run(report, ledger.flow_run_id)


async def clean_up_interrupted_run(flow: Any, flow_run: Any, state: Any) -> None:
    """``on_cancellation`` / ``on_crashed`` hook: finish the cleanup the flow could not."""
    try:
        ledger = await load_ledger(str(flow_run.id))
    except Exception as exc:
        logger.error("cannot read cleanup ledger of %s: %s", flow_run.id, exc)
        return
    if ledger is None:
        return  # the flow cleaned up itself, or never touched anything
    creds = await credentials_for(ledger.credentials_block)
    result = await clean_up(ledger, creds, set())
    logger.warning(
        "run %s ended %s; cleanup: %s%s",
        flow_run.id,
        state.type,
        "; ".join(result.actions),
        f"; still pending (left for the sweeper): {'; '.join(result.pending)}" if result.pending else "",
    )
    await publish_crash_report(ledger, result, f"the run ended {state.type.value}")
    await settle_ledger(ledger, result)
