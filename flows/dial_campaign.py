"""The campaign flow: provision -> await ready -> dial out -> collect results -> disable SIP."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import (
    acreate_markdown_artifact,
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)
from prefect.context import FlowRunContext
from prefect.states import Cancelled, Completed, Failed
from pydantic import Field

from tasks import DailyCredentials, DailyError, DailyNotFoundError, DailyRequestError
from tasks.dialout import send_dtmf, start_dial_out, stop_dial_out
from tasks.models import DialOutCodecs, StartDialOut
from tasks.rooms import create_room, get_room, update_room
from tasks.webhooks import ensure_webhook

from .campaign import Campaign, Target
from .cleanup import Ledger, clean_up, clean_up_interrupted_run, credentials_for, drop_ledger, save_ledger
from .listener import DailyEvent, EventRouter, RoomListener
from .report import CampaignReport, TargetResult, outcome_of_error
from .room_lock import room_lock

# How long to wait for Daily to confirm a hang-up before freeing the leg's slot anyway.
END_CONFIRM_SECONDS = 10.0
# A start refused for the session limit (a leg that just ended is not counted out yet) is retried.
SESSION_LIMIT_RETRY_SECONDS = 2.0
ENDED = ("dialout.stopped", "dialout.error")
# How long a `stopped` that came before any `answered` waits for an `answered` overtaken in transit.
REORDER_GRACE_SECONDS = 1.5
# How often a run checks whether someone asked Prefect to cancel it.
CANCEL_POLL_SECONDS = 1.0


def _now() -> datetime:
    return datetime.now(UTC)


def _at(event: DailyEvent) -> datetime:
    return datetime.fromtimestamp(event.received, UTC)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:40] or "campaign"


async def _next(queue: asyncio.Queue[DailyEvent], deadline: float) -> DailyEvent | None:
    """The next event for a leg, or None at the deadline (loop time)."""
    remaining = deadline - asyncio.get_running_loop().time()
    if remaining <= 0:
        return None
    try:
        return await asyncio.wait_for(queue.get(), remaining)
    except TimeoutError:
        return None


async def _answered_soon(queue: asyncio.Queue[DailyEvent]) -> DailyEvent | None:
    deadline = asyncio.get_running_loop().time() + REORDER_GRACE_SECONDS
    while (event := await _next(queue, deadline)) is not None:
        if event.type == "dialout.answered":
            return event
    return None


async def _until_ended(queue: asyncio.Queue[DailyEvent], deadline: float) -> DailyEvent | None:
    while (event := await _next(queue, deadline)) is not None:
        if event.type in ENDED:
            return event
    return None


class _Campaign:
    """One run's working state; the flow function below is its outline."""

    def __init__(self, campaign: Campaign, creds: DailyCredentials, room: str, tag: str,
                 report: CampaignReport, router: EventRouter) -> None:
        self.c = campaign
        self.creds = creds
        self.room = room
        self.tag = tag
        self.report = report
        self.router = router
        self.slots = asyncio.Semaphore(campaign.leg_capacity)
        self.live: set[str] = set()
        self.finished = 0
        self.progress_id: Any = None
        self.all_ready = asyncio.Event()
        self.logger = get_run_logger()

    async def dial_all(self) -> None:
        await asyncio.gather(*(self.run_target(i, t) for i, t in enumerate(self.c.targets)))

    async def run_target(self, index: int, target: Target) -> None:
        result = self.report.targets[index]
        backoff = self.c.redial.backoff_seconds
        for attempt in range(1, self.c.redial.attempts + 1):
            result.attempts = attempt
            result.status, result.sip_code, result.error, result.detail = "unknown", None, None, None
            await self.attempt(index, target, attempt, result)
            if result.status not in self.c.redial.outcomes or attempt == self.c.redial.attempts:
                break
            self.logger.info("%s: %s, redialling in %.0f s", target.sip_uri, result.status, backoff)
            await asyncio.sleep(backoff)
            backoff *= self.c.redial.backoff_multiplier
        self.finished += 1
        self.logger.info("%s: %s%s", target.sip_uri, result.status,
                         f" ({result.error})" if result.error else "")
        if self.progress_id:
            with contextlib.suppress(Exception):
                await aupdate_progress_artifact(
                    self.progress_id, 100.0 * self.finished / len(self.c.targets)
                )

    async def attempt(self, index: int, target: Target, attempt: int, result: TargetResult) -> None:
        user_id = f"{self.tag}-{index}-{attempt}"
        queue = self.router.queue(user_id)
        request = StartDialOut(
            sip_uri=target.dial_uri,
            display_name=target.display_name,
            user_id=user_id,
            video=self.c.video,
            codecs=DialOutCodecs(
                audio=self.c.audio_codecs, video=self.c.video_codecs if self.c.video else None
            ),
        )
        async with self.slots:
            loop = asyncio.get_running_loop()
            give_up = loop.time() + self.c.ring_timeout_seconds
            while True:
                try:
                    started = await start_dial_out(self.room, request, credentials=self.creds)
                    break
                except DailyRequestError as exc:
                    # Daily counts a leg out a moment after its end event; wait for the slot.
                    if "max_sip_pstn_sessions" in str(exc) and loop.time() < give_up:
                        await asyncio.sleep(SESSION_LIMIT_RETRY_SECONDS)
                        continue
                    result.status, result.error = "failed", exc.info or str(exc)
                    return
                except DailyError as exc:
                    result.status, result.error = "failed", str(exc)
                    return
            session = started.session_id
            self.router.bind(session, user_id)
            result.session_ids.append(session)
            self.live.add(session)
            try:
                ended = await self.follow(target, session, queue, result)
                if not ended:
                    await self.hang_up(session, queue, result)
            finally:
                self.live.discard(session)

    async def follow(self, target: Target, session: str, queue: asyncio.Queue[DailyEvent],
                     result: TargetResult) -> bool:
        """Track one leg to its end; True when Daily already ended it, False if we must hang up."""
        loop = asyncio.get_running_loop()
        ring_deadline = loop.time() + self.c.ring_timeout_seconds
        while True:
            event = await _next(queue, ring_deadline)
            if event is None:
                result.status = "no_answer"
                result.detail = f"no answer within {self.c.ring_timeout_seconds:.0f} s"
                return False
            if event.type == "dialout.connected":
                result.connected_at = _at(event)
            elif event.type == "dialout.answered":
                result.status, result.answered_at = "answered", _at(event)
                break
            elif event.type == "dialout.error":
                result.status, result.sip_code = outcome_of_error(event.payload.get("error_msg"))
                result.error = event.payload.get("error_msg") or "dial-out error"
                result.stopped_at = _at(event)
                return True
            elif event.type == "dialout.stopped":
                # Deliveries can arrive out of order: an `answered` sent just before may still come.
                late = await _answered_soon(queue)
                if late is not None:
                    result.status, result.answered_at = "answered", _at(late)
                    return self._ended_after_answer(event, result)
                result.status, result.stopped_at = "rejected", _at(event)
                result.detail = "far end ended the call before answering"
                return True
            elif event.type == "dialout.warning":
                self.logger.warning("%s: %s", target.sip_uri, event.payload.get("error_msg") or "warning")
        hold = self.c.after_answer
        end_deadline = loop.time() + (hold.hold_seconds if hold.mode == "hang_up_after" else hold.max_seconds)
        if target.dtmf:
            ended = await _until_ended(queue, min(loop.time() + target.dtmf_delay_seconds, end_deadline))
            if ended is None:
                try:
                    await send_dtmf(self.room, session, target.dtmf, credentials=self.creds)
                    result.dtmf_sent = target.dtmf
                except DailyError as exc:
                    result.detail = f"DTMF not delivered: {exc}"
            else:
                return self._ended_after_answer(ended, result)
        ended = await _until_ended(queue, end_deadline)
        if ended is not None:
            return self._ended_after_answer(ended, result)
        result.detail = (
            f"hung up after {hold.hold_seconds:g} s" if hold.mode == "hang_up_after"
            else f"hung up at the {hold.max_seconds:g} s maximum"
        )
        return False

    def _ended_after_answer(self, event: DailyEvent, result: TargetResult) -> bool:
        result.stopped_at = _at(event)
        far_end = event.type == "dialout.stopped"
        result.detail = "far end hung up" if far_end else event.payload.get("error_msg")
        self._on_call(result)
        return True

    @staticmethod
    def _on_call(result: TargetResult) -> None:
        if result.answered_at and result.stopped_at:
            result.seconds_on_call = (result.stopped_at - result.answered_at).total_seconds()

    async def hang_up(self, session: str, queue: asyncio.Queue[DailyEvent], result: TargetResult) -> None:
        try:
            await stop_dial_out(self.room, session, credentials=self.creds)
        except DailyNotFoundError:
            pass  # it ended on its own a moment ago
        except DailyError as exc:
            self.logger.warning("could not hang up %s: %s (cleanup will retry)", session, exc)
            return
        ended = await _until_ended(queue, asyncio.get_running_loop().time() + END_CONFIRM_SECONDS)
        result.stopped_at = _at(ended) if ended else _now()
        self._on_call(result)

    async def watch_dialin(self) -> None:
        while True:
            event = await self.router.room_events.get()
            if event.type == "dialin.ready":
                endpoint = event.payload.get("sip_endpoint")
                if endpoint and endpoint not in self.report.dialin_ready:
                    self.report.dialin_ready.append(endpoint)
                if len(self.report.dialin_ready) >= len(self.report.dialin_endpoints):
                    self.all_ready.set()


async def _provision(campaign: Campaign, creds: DailyCredentials, ledger: Ledger) -> Any:
    """Create the room (or borrow one), with SIP dial-in and REST dial-out allowed."""
    props: dict[str, Any] = {
        "enable_dialout": True,
        "dialout_config": {"allow_room_start": True},
    }
    if campaign.dial_in.enabled:
        props["sip"] = {
            "sip_mode": "dial-in",
            "display_name": campaign.dial_in.display_name,
            "num_endpoints": campaign.dial_in.num_endpoints,
            "video": campaign.video,
            "codecs": {"audio": campaign.audio_codecs,
                       **({"video": campaign.video_codecs} if campaign.video else {})},
        }
    if campaign.room is None:
        # Expiry is the safety net for a run killed so hard that no cleanup ran at all.
        props["exp"] = int(time.time() + campaign.deadline_seconds + 3600)
        ledger.created_room = True
        ledger.restore = {"sip": None} if campaign.dial_in.enabled else {}
        await save_ledger(ledger)
        return await create_room(ledger.room, properties=props, credentials=creds)
    before = await get_room(campaign.room, credentials=creds)
    known_sip = ("sip_mode", "display_name", "video", "num_endpoints", "codecs", "provider",
                 "force_digit_only_username", "dialin_config")
    prior_sip = before.config.sip
    ledger.restore = {
        "enable_dialout": bool(before.config.enable_dialout),
        "dialout_config": before.config.dialout_config or {"allow_room_start": False},
    }
    if campaign.dial_in.enabled:
        ledger.restore["sip"] = {k: v for k, v in prior_sip.items() if k in known_sip} if prior_sip else None
    await save_ledger(ledger)
    return await update_room(campaign.room, properties=props, credentials=creds)


async def _await_ready(campaign: Campaign, creds: DailyCredentials, room: str) -> list[str]:
    """The room's config must list every dial-in endpoint before anyone is dialled."""
    if not campaign.dial_in.enabled:
        return []
    deadline = time.monotonic() + campaign.ready_timeout_seconds
    while True:
        info = await get_room(room, credentials=creds)
        endpoints = info.config.sip_uri.all_endpoints if info.config.sip_uri else []
        if len(endpoints) >= campaign.dial_in.num_endpoints:
            return endpoints
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"room {room} did not list {campaign.dial_in.num_endpoints} SIP endpoint(s) within "
                f"{campaign.ready_timeout_seconds:.0f} s (has {len(endpoints)}); check the SIP settings"
            )
        await asyncio.sleep(1.0)


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


async def _publish(report: CampaignReport) -> None:
    with contextlib.suppress(Exception):
        await acreate_table_artifact(
            table=[t.row() for t in report.targets], key="dial-campaign-results",
            description=report.message,
        )
        await acreate_markdown_artifact(
            markdown=report.summary_markdown(), key="dial-campaign-summary", description="Campaign summary"
        )


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
        from flows.campaign import Campaign
        from flows.dial_campaign import dial_campaign

        report = await dial_campaign(Campaign(targets=[{"sip_uri": "sip:123@bridge.example.com"}]))
        ```
    """
    logger = get_run_logger()
    context = FlowRunContext.get()
    run_id = str(context.flow_run.id) if context and context.flow_run else "local"
    tag = run_id.replace("-", "")[:8]
    creds = await credentials_for(credentials_block)
    room_name = campaign.room or f"{_slug(campaign.name)}-{tag}"
    report = CampaignReport(
        campaign=campaign.name, room=room_name, flow_run_id=run_id, started_at=_now(),
        targets=[TargetResult(index=i, sip_uri=t.sip_uri, display_name=t.display_name)
                 for i, t in enumerate(campaign.targets)],
        required=campaign.success.required(len(campaign.targets)),
    )
    ledger = Ledger(flow_run_id=run_id, room=room_name, user_prefix=f"{tag}-",
                    delete_room=campaign.delete_created_room, credentials_block=credentials_block)
    router = EventRouter()
    work: _Campaign | None = None
    cancel_asked = asyncio.Event()
    cancel_watch = (
        asyncio.create_task(_watch_for_cancel(run_id, asyncio.current_task(), cancel_asked))
        if context and context.flow_run else None
    )
    held = contextlib.AsyncExitStack()
    try:
        if campaign.room:
            await held.enter_async_context(room_lock(campaign.room, campaign.deadline_seconds, logger))
        if webhook_url:
            await ensure_webhook(webhook_url, credentials=creds)
        async with RoomListener(room_name, router):
            room = await _provision(campaign, creds, ledger)
            report.room_created = ledger.created_room
            report.dialin_endpoints = await _await_ready(campaign, creds, room.name)
            work = _Campaign(campaign, creds, room.name, tag, report, router)
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
        report.finished_at = _now()
        for t in report.targets:
            if t.status == "unknown" and report.error:
                t.status, t.detail = "canceled", t.detail or "not finished when the campaign stopped"
        await _publish(report)
        logger.info("%s\n%s", report.message, report.table())
        await held.aclose()  # the room is free for the next campaign once it is cleaned up
    if cancel_asked.is_set():
        return Cancelled(message=f"cancelled on request; {report.message}", data=report)
    if report.success:
        return Completed(message=report.message, data=report)
    return Failed(message=report.message, data=report)
