"""The dialler: every target of a campaign, leg by leg, from start to hang-up.

One `Dialer` per run. Each target gets up to ``redial.attempts`` attempts; each attempt is one
dial-out leg with its own ``userId`` (``<run tag>-<target>-<attempt>``), started under the room's
session limit and followed through Daily's ``dialout.*`` webhooks (delivered as Prefect events by
the receiver, routed per leg by `EventRouter`).

The per-leg calls (start, DTMF, stop) run the public tasks' bodies with the tasks' retry policy
(`retrying`) instead of as task runs: a task run per HTTP call cost more flow CPU, server CPU
and database rows than the call itself; the legs are recorded in the campaign report and its
artifacts, and the coarse steps (provision, webhook, cleanup) remain task runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import aupdate_progress_artifact
from prefect.context import FlowRunContext

from daily_sip.tasks import DailyCredentials, DailyError, DailyNotFoundError, DailyRequestError
from daily_sip.tasks.dialout import asend_dtmf, astart_dial_out, astop_dial_out
from daily_sip.tasks.models import DialOutCodecs, StartDialOut
from daily_sip.tasks.retries import retrying

from .campaign import Campaign, Target
from .listener import DailyEvent, EventRouter
from .report import CampaignReport, TargetResult, outcome_of_error

# How long to wait for Daily to confirm a hang-up before freeing the leg's slot anyway.
END_CONFIRM_SECONDS = 10.0
# A start refused for the session limit (a leg that just ended is not counted out yet) is retried.
SESSION_LIMIT_RETRY_SECONDS = 2.0
ENDED = ("dialout.stopped", "dialout.error")
# How long a `stopped` that came before any `answered` waits for an `answered` overtaken in transit.
REORDER_GRACE_SECONDS = 1.5
# The progress artifact is updated at most this often (and once more at 100 %).
PROGRESS_EVERY_SECONDS = 5.0


def now() -> datetime:
    return datetime.now(UTC)


def _at(event: DailyEvent) -> datetime:
    return datetime.fromtimestamp(event.received, UTC)


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


class Dialer:
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
        self._progress_at = float("-inf")
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
        await self.show_progress()

    async def show_progress(self) -> None:
        """Update the run's progress artifact: at most every ``PROGRESS_EVERY_SECONDS``, and at 100 %.

        Through the run's own Prefect client: without one, each update opened a client of its own
        (a TLS context each), and per-target updates were a fifth of the flow's CPU.
        """
        now_ = asyncio.get_running_loop().time()
        done = self.finished == len(self.c.targets)
        if not self.progress_id or (not done and now_ - self._progress_at < PROGRESS_EVERY_SECONDS):
            return
        self._progress_at = now_
        context = FlowRunContext.get()
        with contextlib.suppress(Exception):
            await aupdate_progress_artifact(self.progress_id, 100.0 * self.finished / len(self.c.targets),
                                            client=context.client if context else None)

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
                    started = await retrying(astart_dial_out.fn, self.room, request, credentials=self.creds)
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
                    await retrying(asend_dtmf.fn, self.room, session, target.dtmf, credentials=self.creds)
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
            await retrying(astop_dial_out.fn, self.room, session, credentials=self.creds)
        except DailyNotFoundError:
            pass  # it ended on its own a moment ago
        except DailyError as exc:
            self.logger.warning("could not hang up %s: %s (cleanup will retry)", session, exc)
            return
        ended = await _until_ended(queue, asyncio.get_running_loop().time() + END_CONFIRM_SECONDS)
        result.stopped_at = _at(ended) if ended else now()
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
