"""Collecting the results: what the run's events say beyond each leg (dial-in readiness, silence,
latency, forgeries), written into the report once the legs are done."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

from daily_sip.flows.collect.listener import EventRouter, RoomListener
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
    """Events posted to Prefect as Daily's that Daily did not sign, and room-level events Daily
    signed before this run provisioned the room (replays): counted and warned about."""
    report.forged_events = router.forged + router.replayed
    if router.replayed:
        logger.warning(
            "%d room event(s) signed by Daily before this run provisioned the room (an earlier "
            "campaign's in the same room, or replayed through the Prefect API) were ignored",
            router.replayed,
        )
    if router.forged:
        logger.warning(
            "%d event(s) posted to the Prefect API as Daily's were not signed by Daily and were "
            "ignored; close the Prefect API to outsiders (see docs/architecture.md, 'Trust boundary')",
            router.forged,
        )


# Statuses a late `dialout.answered` overturns: each says, or allows, that nobody picked up.
OVERTURNED_BY_ANSWER = ("ended_before_answer", "no_answer", "unknown", "no_events")


async def take_late_answers(report: CampaignReport, router: EventRouter, tag: str, logger: Any) -> None:
    """Before the report is published: a signed ``dialout.answered`` that came after its leg's
    verdict (delivered late, out of order) corrects that verdict to ``answered``.

    Events reach the flow by the live stream while the room is listened to; the room's event
    history is read once more here (only when some verdict could change), for what came since.

    Example:
        ```python
        await take_late_answers(run.report, run.router, run.tag, run.logger)
        ```
    """
    open_to_answer = [t for t in report.targets if t.status in OVERTURNED_BY_ANSWER and t.attempts]
    if not open_to_answer:
        return
    if report.room:
        history = RoomListener(report.room, router)
        history.since = report.started_at - timedelta(seconds=60)
        try:
            await history.reconcile()
        except Exception as exc:  # the live stream's events are still taken below
            logger.debug("event history read before the report failed: %s", exc)
        finally:
            await history.__aexit__(None, None, None)
    for target in open_to_answer:
        queue = router.queue(f"{tag}-{target.index}-{target.attempts}")
        answered = None
        while not queue.empty():
            event = queue.get_nowait()
            if event.type == "dialout.answered" and answered is None:
                answered = event
        if answered is None:
            continue
        was = target.status
        target.status = "answered"
        target.answered_at = datetime.fromtimestamp(answered.event_ts or answered.received, UTC)
        if target.dialed_at:
            target.seconds_to_answer = (target.answered_at - target.dialed_at).total_seconds()
        if target.stopped_at:
            target.seconds_on_call = max(0.0, (target.stopped_at - target.answered_at).total_seconds())
        target.detail = f"answered: its dialout.answered webhook came late, after the verdict {was}"
        logger.warning("%s: a late dialout.answered turns %s into answered", target.sip_uri, was)
    report.events_received = router.accepted
