"""The campaign flow: provision -> await ready -> dial out -> collect results -> disable SIP."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import time
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_progress_artifact
from prefect.context import FlowRunContext
from prefect.states import Cancelled, Completed, Failed
from pydantic import Field

from daily_sip.tasks import DailyError
from daily_sip.tasks.webhooks import aensure_webhook

from .campaign import Campaign
from .cleanup import Ledger, clean_up, clean_up_interrupted_run, credentials_for, drop_ledger
from .legs import Dialer, now
from .listener import EventRouter, RoomListener
from .provision import await_ready, provision
from .publish import publish
from .report import CampaignReport, TargetResult
from .room_lock import room_lock

# How often a run nobody supervises checks whether someone asked Prefect to cancel it.
CANCEL_POLL_SECONDS = 5.0
# Set by Prefect's workers and `serve` in the flow run's process: they watch for cancellation
# themselves (one watcher per worker, not one poll per run), kill the process and run the
# on_cancellation hook, so a supervised run does not poll too.
SUPERVISED_ENV = "PREFECT__FLOW_RUN_ID"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:40] or "campaign"


async def _watch_for_cancel(run_id: str, body: asyncio.Task[Any], asked: asyncio.Event) -> None:
    """Cancel the flow body when the run turns CANCELLING (e.g. "Cancel" in the UI).

    A worker or `serve` kills a cancelled run's process and then runs the on_cancellation hook;
    a run started in-process (`daily-sip run`, a notebook) has nobody to do that, so it would keep
    dialing. Cancelling the body here makes its own cleanup run instead.
    """
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        while True:
            await asyncio.sleep(CANCEL_POLL_SECONDS)
            try:
                run = await client.read_flow_run(run_id)
            except Exception:  # a blip in the API must not end the campaign
                continue
            if run.state and (run.state.is_cancelling() or run.state.is_cancelled()):
                asked.set()
                body.cancel()
                return


@flow(
    name="dial-campaign",
    description="Put a Daily room onto many SIP bridges and report which answered.",
    on_cancellation=[clean_up_interrupted_run],
    on_crashed=[clean_up_interrupted_run],
    validate_parameters=True,
)
async def dial_campaign(
    campaign: Campaign,
    credentials_block: str | None = Field(
        default=None,
        title="Credentials block",
        description="Saved DailyCredentials block; empty = DAILY_API_KEY / DAILY_API_URL from the "
        "environment.",
    ),
    webhook_url: str | None = Field(
        default=None,
        title="Webhook receiver URL",
        description="Public URL of the webhook receiver; when set, the domain's Daily webhook is "
        "pointed at it.",
    ),
) -> CampaignReport:
    """Dial every target from one room, collect outcomes from Daily's webhooks, clean up.

    The run ends Completed when the campaign's success rule holds, Failed otherwise; either
    way its result is the CampaignReport, also published as table and markdown artifacts.

    Example:
        ```python
        from daily_sip.flows.campaign import Campaign
        from daily_sip.flows.dial_campaign import dial_campaign

        report = await dial_campaign(Campaign(targets=[{"sip_uri": "sip:123@bridge.example.com"}]))
        ```
    """
    cpu_at_start = time.process_time()
    logger = get_run_logger()
    context = FlowRunContext.get()
    run_id = str(context.flow_run.id) if context and context.flow_run else "local"
    tag = run_id.replace("-", "")[:8]
    creds = await credentials_for(credentials_block)
    room_name = campaign.room or f"{_slug(campaign.name)}-{tag}"
    report = CampaignReport(
        campaign=campaign.name, room=room_name, flow_run_id=run_id, started_at=now(),
        targets=[TargetResult(index=i, sip_uri=t.sip_uri, display_name=t.display_name)
                 for i, t in enumerate(campaign.targets)],
        required=campaign.success.required(len(campaign.targets)),
    )
    ledger = Ledger(flow_run_id=run_id, room=room_name, user_prefix=f"{tag}-",
                    delete_room=campaign.delete_created_room, credentials_block=credentials_block)
    router = EventRouter()
    work: Dialer | None = None
    cancel_asked = asyncio.Event()
    cancel_watch = (
        asyncio.create_task(_watch_for_cancel(run_id, asyncio.current_task(), cancel_asked))
        if context and context.flow_run and not os.environ.get(SUPERVISED_ENV) else None
    )
    held = contextlib.AsyncExitStack()
    try:
        if campaign.room:
            await held.enter_async_context(room_lock(campaign.room, campaign.deadline_seconds, logger))
        if webhook_url:
            await aensure_webhook(webhook_url, credentials=creds)
        async with RoomListener(room_name, router):
            room = await provision(campaign, creds, ledger)
            report.room_created = ledger.created_room
            report.dialin_endpoints = await await_ready(campaign, creds, room.name)
            work = Dialer(campaign, creds, room.name, tag, report, router)
            # A progress bar is not worth a campaign: an overloaded API (500) only costs the bar.
            with contextlib.suppress(Exception):
                work.progress_id = await acreate_progress_artifact(
                    0.0, key="dial-campaign-progress", description=f"{campaign.name}: targets finished"
                )
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
                    len(report.dialin_ready), len(report.dialin_endpoints),
                )
            report.events_received, report.duplicate_events = len(router.latencies), router.duplicates
            if router.latencies:
                lat = sorted(router.latencies)
                report.event_latency_p50 = lat[len(lat) // 2]
                report.event_latency_p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))]
                logger.info("webhook->flow latency p50 %.3f s, p95 %.3f s over %d events",
                            report.event_latency_p50, report.event_latency_p95, len(lat))
    except (DailyError, TimeoutError) as exc:
        report.error = str(exc)
        logger.error("campaign stopped: %s", exc)
    except BaseException as exc:
        # Cancelled or interrupted: record it, clean up below, then let it propagate, unless it
        # is our own answer to a cancel request: then the run ends Cancelled with its report.
        asked = isinstance(exc, asyncio.CancelledError) and cancel_asked.is_set()
        report.error = "cancelled on request" if asked else f"interrupted ({type(exc).__name__})"
        for t in report.targets:
            if t.status == "unknown":
                t.status = "canceled"
        if not asked:
            raise
        asyncio.current_task().uncancel()
    finally:
        if cancel_watch:
            cancel_watch.cancel()
        if ledger.created_room or ledger.restore:
            live = work.live if work else set()
            report.cleanup = await asyncio.shield(clean_up(ledger, creds, live))
            with contextlib.suppress(Exception):
                await drop_ledger(run_id)
        report.finished_at = now()
        for t in report.targets:
            if t.status == "unknown" and report.error:
                t.status, t.detail = "canceled", t.detail or "not finished when the campaign stopped"
        await publish(report)
        logger.info("%s\n%s", report.message, report.table())
        usage = resource.getrusage(resource.RUSAGE_SELF)
        # One line for capacity planning (benchmarks/fleet.py reads it): what this run cost here.
        logger.info("resources: %.3f s CPU in this run, %.3f s in its process, peak RSS %.0f MB",
                    time.process_time() - cpu_at_start, usage.ru_utime + usage.ru_stime,
                    usage.ru_maxrss / 1024)
        await held.aclose()  # the room is free for the next campaign once it is cleaned up
    if cancel_asked.is_set():
        return Cancelled(message=f"cancelled on request; {report.message}", data=report)
    if report.success:
        return Completed(message=report.message, data=report)
    return Failed(message=report.message, data=report)
