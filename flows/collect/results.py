"""Collecting the results: what the run's events say beyond each leg (dial-in readiness, silence,
latency, forgeries), written into the report once the legs are done."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from daily_sip.flows.collect.listener import EventRouter
from daily_sip.flows.dial.silence import NO_EVENTS_ADVICE
from daily_sip.flows.report.model import CampaignReport

# ``dialin.ready`` follows the first leg; stragglers get this long once the legs are done.
DIALIN_READY_GRACE_SECONDS = 5.0


async def await_dialin_ready(report: CampaignReport, all_ready: asyncio.Event, at_most: float) -> None:
    """Give ``dialin.ready`` stragglers a moment (at most `DIALIN_READY_GRACE_SECONDS`)."""
    if len(report.dialin_ready) < len(report.dialin_endpoints):
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(DIALIN_READY_GRACE_SECONDS, at_most)):
                await all_ready.wait()


def collect_results(report: CampaignReport, router: EventRouter, logger: Any) -> None:
    """Warnings a user must see, and the event figures, once every leg has ended.

    Example:
        ```python
        collect_results(run.report, run.router, run.logger)
        ```
    """
    if len(report.dialin_ready) < len(report.dialin_endpoints):
        logger.warning(
            "only %d of %d SIP dial-in endpoints reported dialin.ready; callers may not get in",
            len(report.dialin_ready),
            len(report.dialin_endpoints),
        )
    if any(t.status == "no_events" for t in report.targets):
        report.notes.append(NO_EVENTS_ADVICE)
        logger.warning("%s", NO_EVENTS_ADVICE)
    report.events_received, report.duplicate_events = router.accepted, router.duplicates
    if router.latencies:
        lat = sorted(router.latencies)
        report.event_latency_p50 = lat[len(lat) // 2]
        report.event_latency_p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))]
        logger.info(
            "webhook->flow latency p50 %.3f s, p95 %.3f s over %d events",
            report.event_latency_p50,
            report.event_latency_p95,
            len(lat),
        )


def count_forged(report: CampaignReport, router: EventRouter, logger: Any) -> None:
    """Events posted to Prefect as Daily's that Daily did not sign: counted and warned about."""
    report.forged_events = router.forged
    if router.forged:
        logger.warning(
            "%d event(s) posted to the Prefect API as Daily's were not signed by Daily and were "
            "ignored; close the Prefect API to outsiders (see docs/architecture.md, 'Trust boundary')",
            router.forged,
        )
