"""The campaign flow: provision -> await ready -> dial out -> collect results -> disable SIP."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import time
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_progress_artifact
from prefect.context import FlowRunContext
from prefect.states import Cancelled, Completed, Failed
from pydantic import Field

from daily_sip.flows.campaign.model import Campaign
from daily_sip.flows.cleanup.actions import CleanupResult, clean_up
from daily_sip.flows.cleanup.crash import clean_up_interrupted_run
from daily_sip.flows.cleanup.heartbeat import Heartbeat
from daily_sip.flows.cleanup.ledger import Ledger, report_snapshot, settle_ledger
from daily_sip.flows.collect.listener import EventRouter, RoomListener
from daily_sip.flows.collect.verify import EventVerifier
from daily_sip.flows.dial.dialer import Dialer, now
from daily_sip.flows.dial.silence import NO_EVENTS_ADVICE
from daily_sip.flows.provision.preflight import credentials_or_explain, preflight
from daily_sip.flows.provision.room import await_ready, provision
from daily_sip.flows.provision.room_lock import room_lock
from daily_sip.flows.report.board import Board
from daily_sip.flows.report.model import CampaignReport, TargetResult
from daily_sip.flows.report.naming import artifact_key, flow_run_name, quiet_completed_tasks, slug
from daily_sip.flows.report.publish import publish
from daily_sip.flows.supervision.cancel_watch import ASKED, cancel_watch
from daily_sip.flows.sweeper import RoomLeftoversError
from daily_sip.tasks import DailyError
from daily_sip.tasks.retries import inline
from daily_sip.tasks.webhooks import aensure_webhook

# How often a run under a `process` worker checks that its worker is still alive (a local
# check, no API call).
ORPHAN_CHECK_SECONDS = 1.0


def _own_process() -> bool:
    """True in a flow-run process a worker or `serve` started (they set PREFECT__FLOW_RUN_ID)."""
    return bool(os.environ.get("PREFECT__FLOW_RUN_ID"))


async def _watch_parent(body: asyncio.Task[Any], orphaned: asyncio.Event) -> None:
    """Stop the campaign, with its cleanup, when the worker that started this process died.

    A worker or `serve` watches its runs for cancellation itself, kills a cancelled run's process
    and runs the on_cancellation hook. A worker killed outright (``kill -9``) leaves its
    flow-run child unsupervised, so the child stops itself within `ORPHAN_CHECK_SECONDS` of its
    parent disappearing (it is re-parented). Runs sharing a process (`daily-sip run`, the
    in-process `daily-sip worker`) are watched by `flows.cancel_watch` instead.
    """
    parent = os.getppid()
    while True:
        await asyncio.sleep(ORPHAN_CHECK_SECONDS)
        if os.getppid() != parent:
            orphaned.set()
            body.cancel()
            return


quiet_completed_tasks()


async def _clean_up_for_report(ledger: Ledger, creds: Any, live: set[str], logger: Any) -> CleanupResult:
    """Cleanup that never raises into the report: anything unexpected is itself reported as pending."""
    ledger.report = None  # this run publishes its own report; no crash report from the ledger
    try:
        result = await clean_up(ledger, creds, live)
    except Exception as exc:
        logger.error("cleanup stopped unexpectedly: %s", exc)
        result = CleanupResult(pending=[f"cleanup stopped unexpectedly ({type(exc).__name__}: {exc})"])
    if result.pending:
        logger.error(
            "cleanup still pending (kept in ledger %s for the sweeper): %s",
            ledger.variable_name,
            "; ".join(result.pending),
        )
    await settle_ledger(ledger, result)
    return result


@flow(
    name="dial-campaign",
    flow_run_name=flow_run_name,
    description="Put a Daily room onto many SIP bridges and report which answered.",
    on_cancellation=[clean_up_interrupted_run],
    on_crashed=[clean_up_interrupted_run],
    validate_parameters=True,
)
async def dial_campaign(
    campaign: Campaign,
    # Prefect titles every parameter with its Python name; json_schema_extra is applied last, so
    # the form shows these titles. An empty string means "none": no str / None toggle in the form.
    credentials_block: str = Field(
        default="",
        description="Name of a saved DailyCredentials block (`daily-sip setup` saves `daily`); "
        "empty = DAILY_API_KEY / DAILY_API_URL from the worker's environment.",
        json_schema_extra={"title": "Daily credentials block"},
    ),
    webhook_url: str = Field(
        default="",
        description="Public URL of the webhook receiver; when set, the domain's Daily webhook is "
        "pointed at it first. Empty = leave the webhook as it is.",
        json_schema_extra={"title": "Webhook receiver URL"},
    ),
) -> CampaignReport:
    """Dial every target from one room, collect outcomes from Daily's webhooks, clean up.

    The run ends Completed when the campaign's success rule holds, Failed otherwise; either
    way its result is the CampaignReport, also published as table and markdown artifacts.

    Example:
        ```python
        from daily_sip.flows.campaign.model import Campaign
        from daily_sip.flows.dial_campaign import dial_campaign

        report = await dial_campaign(Campaign(targets=[{"sip_uri": "sip:123@bridge.example.com"}]))
        ```
    """
    cpu_at_start = time.process_time()
    logger = get_run_logger()
    context = FlowRunContext.get()
    run_id = str(context.flow_run.id) if context and context.flow_run else "local"
    tag = run_id.replace("-", "")[:8]
    creds = None
    room_name = campaign.room or f"{slug(campaign.name)}-{tag}"
    report = CampaignReport(
        campaign=campaign.name,
        room=room_name,
        flow_run_id=run_id,
        started_at=now(),
        targets=[
            TargetResult(
                index=i, sip_uri=t.uri, display_name=t.display_name, bridge=t.bridge, dtmf_script=t.plan.dtmf
            )
            for i, t in enumerate(campaign.targets)
        ],
        required=campaign.success.required(len(campaign.targets)),
        success_counts=campaign.success.counts,
    )
    ledger = Ledger(
        flow_run_id=run_id,
        room=room_name,
        user_prefix=f"{tag}-",
        delete_room=campaign.delete_created_room,
        credentials_block=credentials_block,
    )
    # Until the credentials are loaded nothing can be verified; no event is read before that.
    router = EventRouter(EventVerifier(None), room_name)
    ledger.report = report.model_dump(mode="json")  # saved with the ledger, for a crash report
    work: Dialer | None = None
    cancel_asked, orphaned, worker_stopping = asyncio.Event(), asyncio.Event(), asyncio.Event()
    body = asyncio.current_task()
    held = contextlib.AsyncExitStack()
    parent_watch, watched = None, contextlib.ExitStack()
    if context and context.flow_run and _own_process():
        parent_watch = asyncio.create_task(_watch_parent(body, orphaned))
    elif context and context.flow_run:

        def stop(why: str) -> None:
            (cancel_asked if why == ASKED else worker_stopping).set()
            body.cancel()

        watched.enter_context(cancel_watch().watching(run_id, stop))
    await held.enter_async_context(Heartbeat(ledger, snapshot=lambda: report_snapshot(report)))
    try:
        # Key and URL are proven by one cheap call before anything is touched.
        creds = await credentials_or_explain(credentials_block)
        await preflight(creds)
        router.verifier = EventVerifier(creds.webhook_secret)
        if not router.verifier.can_verify:
            logger.error(
                "the credentials have no webhook_secret: Daily's events cannot be verified, so none "
                "will be trusted; set it to the secret the Daily webhook signs with"
            )
        if campaign.room:
            await held.enter_async_context(
                room_lock(campaign.room, campaign.deadline_seconds, logger, holder=run_id)
            )
        if webhook_url:
            await inline(aensure_webhook, webhook_url, credentials=creds)
        async with RoomListener(room_name, router):
            room = await provision(campaign, creds, ledger)
            report.room_created = ledger.created_room
            report.dialin_endpoints = await await_ready(campaign, creds, room.name)
            work = Dialer(campaign, creds, room.name, tag, report, router)
            # A progress bar is not worth a campaign: an overloaded API (500) only costs the bar.
            progress_id = None
            with contextlib.suppress(Exception):
                progress_id = await acreate_progress_artifact(
                    0.0,
                    key=artifact_key(campaign.name, "progress"),
                    description=f"{campaign.name}: bridges answered or finished",
                )
            work.board = Board(report, logger, progress_id)
            await work.board.publish()
            watcher = asyncio.create_task(work.watch_dialin())
            try:
                async with asyncio.timeout(campaign.deadline_seconds):
                    await work.dial_all()
                # dialin.ready follows the first leg; give stragglers a moment.
                if len(report.dialin_ready) < len(report.dialin_endpoints):
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(min(5.0, campaign.ready_timeout_seconds)):
                            await work.all_ready.wait()
            except TimeoutError:
                report.error = f"campaign deadline of {campaign.deadline_seconds:.0f} s reached"
            finally:
                watcher.cancel()
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
    except (DailyError, TimeoutError, RoomLeftoversError) as exc:
        report.error = str(exc)
        logger.error("campaign stopped: %s", exc)
    except BaseException as exc:
        # Cancelled or interrupted: record it, clean up below, then let it propagate, unless it
        # is our own answer to a cancel request: then the run ends Cancelled with its report.
        asked = isinstance(exc, asyncio.CancelledError) and cancel_asked.is_set()
        report.error = (
            "cancelled on request"
            if asked
            else "stopped: the worker that supervised this run died"
            if orphaned.is_set()
            else "stopped: the worker running this campaign was shut down"
            if worker_stopping.is_set()
            else f"interrupted ({type(exc).__name__})"
        )
        for t in report.targets:
            if t.status == "unknown":
                t.status = "canceled"
        if not asked:
            raise
        asyncio.current_task().uncancel()
    finally:
        watched.close()  # a cancel from here on would only cut the cleanup and the report short
        if parent_watch:
            parent_watch.cancel()
        if ledger.created_room or ledger.restore:
            live = work.live if work else set()
            result = await asyncio.shield(_clean_up_for_report(ledger, creds, live, logger))
            report.cleanup, report.cleanup_pending = result.actions, result.pending
        report.forged_events = router.forged
        if router.forged:
            logger.warning(
                "%d event(s) posted to the Prefect API as Daily's were not signed by Daily and were "
                "ignored; close the Prefect API to outsiders (see the README, 'Trust boundary')",
                router.forged,
            )
        report.finished_at = now()
        for t in report.targets:
            if t.status == "unknown" and report.error:
                t.status, t.detail = "canceled", t.detail or "not finished when the campaign stopped"
        if work is not None and work.board is not None:
            await work.board.close()
        await publish(report)
        # The table is in the artifacts (and `daily-sip run` prints it): one line here, not twice.
        logger.info("%s (results: artifact %s)", report.message, artifact_key(campaign.name, "results"))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        # One line for capacity planning (benchmarks/fleet.py reads it): what this run cost here.
        logger.info(
            "resources: %.3f s CPU in this run, %.3f s in its process, peak RSS %.0f MB",
            time.process_time() - cpu_at_start,
            usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss / 1024,
        )
        await held.aclose()  # the room is free for the next campaign once it is cleaned up
    if cancel_asked.is_set():
        return Cancelled(message=f"cancelled on request; {report.message}", data=report)
    if report.success:
        return Completed(message=report.message, data=report)
    return Failed(message=report.message, data=report)
