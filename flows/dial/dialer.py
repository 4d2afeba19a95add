"""The dialler: every target of a campaign, leg by leg, from start to hang-up.

One `Dialer` per run. Each target gets up to ``redial.attempts`` attempts; each attempt is one
dial-out leg with its own ``userId`` (``<run tag>-<target>-<attempt>``), started under the room's
session limit and followed through Daily's ``dialout.*`` webhooks (delivered as Prefect events by
the receiver, routed per leg by `EventRouter`).

A leg with no ``dialout.answered`` by its ring timeout is reconciled before a verdict (its webhook
may be late or lost): `RECONCILE_SECONDS` more for the event-history re-read. A leg whose own events
arrived is then ``no_answer`` and hung up, unless the hang-up brings its ``answered`` after all or
Daily's own end reason (`ring.after_hang_up`). A leg of which nothing arrived is looked up in
Daily's presence by its ``userId``: listed means up, held like an answered call but reported
``unknown``, unless an ``answered`` event comes while it is held. The rule: docs/outcomes.md.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from prefect import get_run_logger
from prefect.client.schemas.objects import State

from daily_sip.flows.campaign.dtmf import DtmfScript
from daily_sip.flows.campaign.model import Campaign, Target
from daily_sip.flows.collect.listener import DailyEvent, EventRouter
from daily_sip.flows.collect.results import await_dialin_ready
from daily_sip.flows.dial.attempts import LegSlots, StartOutcomeUnknown, hang_up_until_ended, start_once
from daily_sip.flows.dial.ring import Ring, Unanswered, after_hang_up, after_ring_timeout
from daily_sip.flows.dial.silence import SilenceCheck
from daily_sip.flows.report import board
from daily_sip.flows.report.board import Board
from daily_sip.flows.report.escape import plain
from daily_sip.flows.report.model import CampaignReport, DtmfStepResult, TargetResult, outcome_of_error
from daily_sip.flows.report.naming import bridge_label
from daily_sip.flows.steps import dial_leg
from daily_sip.flows.supervision.admission import all_started
from daily_sip.tasks import DailyCredentials, DailyError, DailyRequestError
from daily_sip.tasks.dialout import asend_dtmf
from daily_sip.tasks.events import DIALOUT_LEG_ENDED as ENDED
from daily_sip.tasks.models import DialOutCodecs, StartDialOut
from daily_sip.tasks.presence import aget_room_presence
from daily_sip.tasks.retries import inline

if TYPE_CHECKING:
    from daily_sip.flows.supervision.run import CampaignRun

# A start refused for the session limit (a leg that just ended is not counted out yet) is retried,
# the pause growing to SESSION_LIMIT_MAX_WAIT_SECONDS, until the campaign's deadline.
SESSION_LIMIT_RETRY_SECONDS = 2.0
SESSION_LIMIT_MAX_WAIT_SECONDS = 10.0
# How long after a leg ended Daily may still count it against the session limit (a guess).
SESSION_COUNT_LAG_SECONDS = 10.0
# How long a leg waits for an end event after a failed DTMF step (the leg may have ended under us).
REORDER_GRACE_SECONDS = 1.5
# Slack on top of a script's own time when the hold is stretched to cover it (pacing, HTTP).
SCRIPT_SLACK_SECONDS = 2.0
WRONG_ENTRY_HINT = "check meeting ID / passcode"
# After the ring timeout, how long a leg with no `answered` is reconciled before a verdict: time for
# the event-history read it asks for (RoomListener.stalled), so an event the live stream missed
# still arrives, and Daily's own end event (408/480) gets a moment to land.
RECONCILE_SECONDS = 4.0
PRESENCE_TRIES = 3
# Daily's presence is near-real-time, "up to ~15 s" behind; poll it at most every 15 s
# (https://docs.daily.co/reference/rest-api/presence). A leg younger than this that presence does
# not list yet is looked up once more when it is this old.
PRESENCE_LAG_SECONDS = 15.0
HELD_UNCONFIRMED_DETAIL = (
    "none of this call's dialout webhooks came, but Daily's presence lists it "
    "after the ring timeout: answered with its webhooks lost, or still ringing"
)
ANSWERED_LATE_DETAIL = (
    "answered: its dialout.answered webhook came after the ring timeout, when the call was hung up"
)


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
        event: DailyEvent | None = await asyncio.wait_for(queue.get(), remaining)
    except TimeoutError:
        event = None
    _stop_if_cancel_swallowed()
    return event


def _stop_if_cancel_swallowed() -> None:
    """`asyncio.wait_for` (Python 3.11) returns its result when a cancel lands just as that result
    arrives, swallowing the cancel; the task still counts the request, so the leg stops here
    instead of following its call to the end of the hold."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _answered_soon(queue: asyncio.Queue[DailyEvent]) -> DailyEvent | None:
    # A `stopped` that came before any `answered` waits for an `answered` overtaken in transit or
    # retried by Daily, as long as a late event gets after the ring timeout (RECONCILE_SECONDS).
    deadline = asyncio.get_running_loop().time() + RECONCILE_SECONDS
    while (event := await _next(queue, deadline)) is not None:
        if event.type == "dialout.answered":
            return event
    return None


async def _until_ended(
    queue: asyncio.Queue[DailyEvent], deadline: float, on_answered: Callable[[DailyEvent], None] | None = None
) -> DailyEvent | None:
    while (event := await _next(queue, deadline)) is not None:
        if event.type in ENDED:
            return event
        if event.type == "dialout.answered" and on_answered is not None:
            on_answered(event)
    return None


class _RoomFull(Exception):
    """Raised before a start is sent: the room is full by what Daily accepted."""


async def _nothing() -> None:
    return None


def _note(result: TargetResult, text: str | None) -> None:
    """Add to a result's detail: what happened to the script stays next to how the call ended."""
    if text:
        result.detail = f"{result.detail}; {text}" if result.detail else text


class Dialer:
    """One run's working state; the flow function below is its outline."""

    def __init__(
        self,
        campaign: Campaign,
        creds: DailyCredentials,
        room: str,
        tag: str,
        report: CampaignReport,
        router: EventRouter,
    ) -> None:
        self.campaign = campaign
        self.creds = creds
        self.room = room
        self.tag = tag
        self.report = report
        self.router = router
        self.slots = LegSlots(campaign.leg_capacity)
        self.capacity = campaign.leg_capacity  # lowered to what Daily accepts (`_learn_limit`)
        self.up = 0  # legs Daily accepted and has not confirmed ended
        self.peak = 0  # the most legs Daily accepted at once
        self._one_start = asyncio.Lock()
        self.live: set[str] = set()
        self.last_leg_end = float("-inf")
        self.finished = 0
        self._first_starts: set[int] = set()
        self.all_ready = asyncio.Event()
        self.logger = get_run_logger()
        self.board: Board | None = None  # the live board, when the flow keeps one
        self.silence = SilenceCheck(creds, room)
        # Asked right before each dial-out; raises CancelledError once the run is cancelled.
        self.before_start: Callable[[], Awaitable[None]] = _nothing

    def show(self, result: TargetResult, phase: str, note: str = "") -> None:
        """A leg changed: tell the live board (it logs the line), else just log it."""
        if self.board is not None:
            self.board.change(result, phase, note)
        else:
            self.logger.info(
                "%s: %s%s",
                result.display_name or result.sip_uri,
                result.status if phase == board.ENDED else phase,
                f", {note}" if note else "",
            )

    def _started_once(self, index: int) -> None:
        """A target's first dial-out start returned. Once as many have as the room can hold at
        once, the campaign no longer waits for Daily's start rate: it frees its worker place
        (`admission`); the rest wait for legs of its own to end."""
        self._first_starts.add(index)
        if len(self._first_starts) >= min(len(self.campaign.targets), self.capacity):
            all_started()

    async def dial_all(self) -> None:
        await asyncio.gather(*(self.run_target(i) for i in range(len(self.campaign.targets))))

    async def run_target(self, index: int) -> None:
        """Every attempt at one target (a ``dial`` step each), with the campaign's redial rule."""
        result = self.report.targets[index]
        backoff = self.campaign.redial.backoff_seconds
        for attempt in range(1, self.campaign.redial.attempts + 1):
            result.attempts = attempt
            result.status, result.sip_code, result.error, result.detail = "unknown", None, None, None
            result.dtmf_steps, result.dtmf_sent, result.joined_at = [], None, None
            result.seconds_to_answer = result.seconds_to_joined = None
            # Prefect types `return_state=True` as a State; for an async task it is awaitable.
            await cast(
                Awaitable[State], dial_leg(self, index, attempt, bridge_label(result), return_state=True)
            )
            if result.status not in self.campaign.redial.outcomes or attempt == self.campaign.redial.attempts:
                break
            self.show(result, board.REDIAL, f"{result.status.replace('_', ' ')}; next try in {backoff:.0f} s")
            await asyncio.sleep(backoff)
            backoff *= self.campaign.redial.backoff_multiplier
        self.finished += 1
        self.show(result, board.ENDED)

    async def attempt(self, index: int, target: Target, attempt: int, result: TargetResult) -> None:
        user_id = f"{self.tag}-{index}-{attempt}"
        queue = self.router.queue(user_id)
        request = StartDialOut(
            sip_uri=target.dial_uri,
            display_name=target.display_name,
            user_id=user_id,
            video=self.campaign.video,
            codecs=DialOutCodecs(
                audio=self.campaign.audio_codecs,
                video=self.campaign.video_codecs if self.campaign.video else None,
            ),
        )
        while True:
            async with self.slots:
                self.show(result, board.DIALLING)
                try:
                    session = await self._start(request, queue, result)
                except _RoomFull:
                    continue  # its slot goes back; the next one opens when a leg of ours ends
                if attempt == 1:
                    self._started_once(index)
                if session is None:
                    return
                await self._leg(target, session, user_id, queue, result)
                return

    async def _start(
        self, request: StartDialOut, queue: asyncio.Queue[DailyEvent], result: TargetResult
    ) -> str | None:
        """The leg's session, or None (the status says why); `_RoomFull` when the room is full."""
        pause = SESSION_LIMIT_RETRY_SECONDS
        while True:
            result.dialed_at = now()
            try:
                session, recovered = await start_once(
                    self.room, request, queue, self.creds, self.logger, sending=self._sending
                )
            except StartOutcomeUnknown as exc:
                # It may be ringing somewhere: never dial it again blindly (status stays unknown).
                result.error = str(exc)
                return None
            except DailyRequestError as exc:
                # Daily's refusal text for a full room is undocumented, so "a leg is up or just
                # ended" is the signal. A refusal with legs of ours up tells the room's real limit:
                # the campaign goes on with that many (no target fails for it). Daily counts a leg
                # out a moment after its end event, so a refusal just after a leg ended is waited out.
                if not self._may_be_session_limit(exc):
                    result.status, result.error = "failed", exc.info or str(exc)
                    return None
                if self._learn_limit(exc):
                    raise _RoomFull from None
                await asyncio.sleep(pause)
                pause = min(pause * 1.5, SESSION_LIMIT_MAX_WAIT_SECONDS)
                continue
            except DailyError as exc:
                result.status, result.error = "failed", str(exc)
                return None
            if recovered:
                self.up += 1  # a start whose answer was lost, found up: Daily counts it
            return session

    @contextlib.asynccontextmanager
    async def _sending(self) -> AsyncIterator[None]:
        """Around each dialOut/start request: one at a time, none while the room is full by what
        Daily accepted, none once the run is cancelled."""
        async with self._one_start:
            if self.up >= self.capacity:
                raise _RoomFull
            await self.before_start()
            yield
            self.up += 1
            self.peak = max(self.peak, self.up)

    def _learn_limit(self, exc: DailyRequestError) -> bool:
        """A start refused for the session limit: go on with the most legs Daily ever accepted at
        once (never fewer: a refusal just after a leg ended may only be Daily counting it out late).

        True when the start must wait for a leg of ours to end; False to retry it after a pause
        (nothing of ours up: someone else's sessions, or Daily's late count).
        """
        if 0 < self.peak < self.capacity:
            lowered_from, self.capacity = self.capacity, self.peak
            self.slots.lower(lowered_from - self.peak)
            note = (
                f"session limit found: Daily took {self.peak} leg(s) at once, then refused a start "
                f"(max_sip_pstn_sessions_per_room), fewer than session_limit {self.campaign.session_limit} "
                f"allows; went on with at most {self.peak} legs at once (set session_limit to "
                f"{self.peak + self.campaign.leg_capacity_reserved})"
            )
            self.logger.warning("%s; Daily said: %s", note, exc.info or exc)
            self.report.notes.append(note)
        return self.up >= self.capacity

    def _leg_ended_recently(self) -> bool:
        return asyncio.get_running_loop().time() - self.last_leg_end < SESSION_COUNT_LAG_SECONDS

    async def _leg(
        self,
        target: Target,
        session: str,
        user_id: str,
        queue: asyncio.Queue[DailyEvent],
        result: TargetResult,
    ) -> None:
        self.router.bind(session, user_id)
        result.session_ids.append(session)
        self.live.add(session)
        ended = False
        try:
            ended = await self.follow(target, session, queue, result)
            if not ended:
                ended = await self.hang_up(session, queue, result, user_id)
        finally:
            if ended:
                self.live.discard(session)
                self.up -= 1
            else:  # not confirmed ended: it keeps its slot and stays for cleanup
                self.slots.keep()
            self.last_leg_end = asyncio.get_running_loop().time()

    def _may_be_session_limit(self, exc: DailyRequestError) -> bool:
        return bool(self.up) or self._leg_ended_recently() or "max_sip_pstn_sessions" in str(exc)

    async def follow(
        self, target: Target, session: str, queue: asyncio.Queue[DailyEvent], result: TargetResult
    ) -> bool:
        """Track one leg to its end; True when Daily already ended it, False if we must hang up."""
        loop = asyncio.get_running_loop()
        dialed = loop.time()
        ring_deadline = dialed + self.campaign.ring_timeout_seconds
        heard = reconciling = False
        while True:
            event = await _next(queue, ring_deadline)
            if event is None:
                step = await self._after_ring_timeout(session, reconciling, heard, dialed)
                if step is Ring.RECONCILE:
                    reconciling = True
                    ring_deadline = loop.time() + RECONCILE_SECONDS
                    # The listener reads history only when one wait outlasts its stall time; these
                    # waits are shorter, so ask for the read now.
                    self.router.on_stall()
                    continue
                if step is Ring.HELD_UNCONFIRMED:
                    result.status, result.detail = "unknown", HELD_UNCONFIRMED_DETAIL
                    self.show(result, board.ON_CALL, "per Daily's presence, answer not confirmed")
                    break
                if step in (Ring.RUN_SILENT, Ring.LEG_SILENT):
                    result.status, result.detail = await self.silence.verdict(
                        session,
                        self.router.user_of(session),
                        self.router.accepted,
                        self.campaign.ring_timeout_seconds,
                    )
                else:  # Ring.NO_ANSWER: the hang-up may still bring an answer (see hang_up)
                    result.status = "no_answer"
                    result.detail = f"no answer within {self.campaign.ring_timeout_seconds:.0f} s"
                return False
            heard = True
            if event.type == "dialout.connected":
                result.connected_at = _at(event)
                self.show(result, board.RINGING)
            elif event.type == "dialout.answered":
                self._answered(event, result)
                self.show(result, board.ANSWERED)
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
                    self._answered(late, result)
                    return self._ended_after_answer(event, result)
                # Daily does not say how busy / declined / unreachable / no answer show up; a
                # stop before any answer may be any of them, so say only what is known.
                result.status, result.stopped_at = "ended_before_answer", _at(event)
                result.detail = "Daily reported the call stopped before it was answered (dialout.stopped)"
                return True
            elif event.type == "dialout.warning":
                self.logger.warning("%s: %s", target.uri, plain(event.payload.get("error_msg") or "warning"))
        hold = self.campaign.after_answer
        script = target.script
        if hold.mode == "hang_up_after":
            # A bridge with a script stays at least until its join can be confirmed.
            hold_for = max(
                hold.hold_seconds, target.seconds_to_join() + SCRIPT_SLACK_SECONDS if script else 0.0
            )
        else:
            hold_for = hold.max_seconds
        end_deadline = loop.time() + hold_for
        if script:
            ended = await self.run_script(target, script, session, queue, result, end_deadline)
            if ended is not None:
                if result.status == "dropped_after_dtmf":
                    return self._dropped(ended, result)
                ended_before = self._ended_after_answer(ended, result)
                result.detail = f"{result.detail}, before the DTMF script"
                return ended_before
        self.show(
            result,
            board.ON_CALL,
            f"hanging up after {hold_for:g} s"
            if hold.mode == "hang_up_after"
            else f"staying until the far end leaves (at most {hold.max_seconds:g} s)",
        )
        ended = await _until_ended(queue, end_deadline, lambda late: self._confirm(late, result))
        if ended is not None:
            return self._ended_after_answer(ended, result)
        _note(
            result,
            f"hung up after {round(hold_for, 1):g} s"
            if hold.mode == "hang_up_after"
            else f"hung up at the {hold.max_seconds:g} s maximum",
        )
        return False

    async def _after_ring_timeout(self, session: str, reconciled: bool, heard: bool, dialed: float) -> Ring:
        """`ring.after_ring_timeout`, asking Daily's presence only when the table needs it."""
        known = {"reconciled": reconciled, "heard": heard, "run_heard": self.router.accepted > 0}
        step = after_ring_timeout(**known)
        if step is Ring.ASK_PRESENCE:
            step = after_ring_timeout(**known, in_room=await self._in_room(session, dialed))
        return step

    async def _in_room(self, session: str, dialed: float) -> bool | None:
        """Whether Daily's presence lists this leg; None when presence cannot be read.

        Presence is near-real-time, up to `PRESENCE_LAG_SECONDS` behind: a leg it does not list
        before it is that old is looked up once more then.
        """
        loop = asyncio.get_running_loop()
        user_id = self.router.user_of(session)
        failures = 0
        while True:
            try:
                found = await inline(aget_room_presence, self.room, user_id=user_id, credentials=self.creds)
            except DailyError as exc:
                failures += 1
                if failures == PRESENCE_TRIES:
                    self.logger.warning("presence unreadable while reconciling %s: %s", session, exc)
                    return None
                await asyncio.sleep(1.0)
                continue
            listed = any(p.id == session or (user_id and p.user_id == user_id) for p in found.data)
            too_young = dialed + PRESENCE_LAG_SECONDS - loop.time()
            if listed or too_young <= 0:
                return listed
            await asyncio.sleep(too_young)

    def _answered(self, event: DailyEvent, result: TargetResult) -> None:
        result.status, result.answered_at = "answered", _at(event)
        if result.dialed_at:
            result.seconds_to_answer = (result.answered_at - result.dialed_at).total_seconds()

    async def run_script(
        self,
        target: Target,
        script: DtmfScript,
        session: str,
        queue: asyncio.Queue[DailyEvent],
        result: TargetResult,
        end_deadline: float,
    ) -> DailyEvent | None:
        """Send the target's DTMF script step by step, then wait for the join to be confirmed.

        Returns the end event if the leg ended meanwhile (status ``dropped_after_dtmf`` once a
        tone was sent); otherwise the leg is up and the status is ``joined``, or ``dtmf_failed``
        when Daily refused a step, or still ``answered`` when the hold ran out first.
        """
        loop = asyncio.get_running_loop()
        plan, digit_ms = target.plan, target.dtmf_digit_ms
        for i, step in enumerate(script.steps):
            wait = script.wait_before(i, digit_ms) + (plan.first_prompt_seconds if i == 0 else 0.0)
            ended = await _until_ended(queue, min(loop.time() + wait, end_deadline))
            if ended is not None:
                if i:
                    result.status = "dropped_after_dtmf"
                    result.detail = (
                        f"far end hung up during the DTMF script, after step {i} of {len(script.steps)}"
                    )
                return ended
            try:
                await inline(
                    asend_dtmf,
                    self.room,
                    session,
                    step.tones,
                    digit_duration_ms=digit_ms,
                    credentials=self.creds,
                )
            except DailyError as exc:
                # A leg that ended under us is answered 404; its end event is on its way.
                ended = await _until_ended(queue, loop.time() + REORDER_GRACE_SECONDS)
                if ended is not None and i:
                    result.status = "dropped_after_dtmf"
                    result.detail = (
                        f"far end hung up during the DTMF script, after step {i} of {len(script.steps)}"
                    )
                elif ended is None:
                    result.status = "dtmf_failed"
                    result.detail = f"DTMF step {i + 1} of {len(script.steps)} not delivered: {exc}"
                return ended
            sent = now()
            result.dtmf_steps.append(
                DtmfStepResult(
                    tones=step.tones,
                    sent_at=sent,
                    after_answer_s=round((sent - result.answered_at).total_seconds(), 3)
                    if result.answered_at
                    else 0.0,
                )
            )
            result.dtmf_sent = "".join(s.tones for s in result.dtmf_steps)
            self.show(result, board.DTMF_SENT, f"step {i + 1}/{len(script.steps)}: {step.tones}")
        result.dtmf_sent = script.text
        last = result.dtmf_steps[-1].sent_at
        confirm = (
            script.play_seconds(script.steps[-1].tones, digit_ms)
            + script.trailing_pause
            + plan.join_confirm_seconds
        )
        confirm_at = loop.time() + confirm
        ended = await _until_ended(queue, min(confirm_at, end_deadline))
        if ended is not None:
            result.status = "dropped_after_dtmf"
            result.detail = f"far end hung up {(_at(ended) - last).total_seconds():.1f} s after the last tone"
            return ended
        if loop.time() < confirm_at:
            result.detail = "join not confirmed before the hold ran out"
            return None
        result.status, result.joined_at = "joined", last
        if result.dialed_at:
            result.seconds_to_joined = (last - result.dialed_at).total_seconds()
        self.show(result, board.ON_CALL, "joined: still connected after the join confirmation time")
        return None

    def _dropped(self, event: DailyEvent, result: TargetResult) -> bool:
        result.stopped_at = _at(event)
        if event.type != "dialout.stopped":
            result.detail = f"{result.detail} ({event.payload.get('error_msg') or 'dial-out error'})"
        result.detail = f"{result.detail}; {WRONG_ENTRY_HINT}"
        self._on_call(result)
        return True

    def _confirm(self, event: DailyEvent, result: TargetResult) -> None:
        """A late `answered` for a call held on presence alone: now it is known."""
        if result.status == "unknown":
            self._answered(event, result)
            result.detail = "answered (its dialout.answered webhook came late)"
            self.show(result, board.ON_CALL, "answer confirmed")

    def _ended_after_answer(self, event: DailyEvent, result: TargetResult) -> bool:
        result.stopped_at = _at(event)
        far_end = event.type == "dialout.stopped"
        _note(result, "far end hung up" if far_end else event.payload.get("error_msg"))
        self._on_call(result)
        return True

    @staticmethod
    def _on_call(result: TargetResult) -> None:
        if result.answered_at and result.stopped_at:
            result.seconds_on_call = (result.stopped_at - result.answered_at).total_seconds()

    async def hang_up(
        self, session: str, queue: asyncio.Queue[DailyEvent], result: TargetResult, user_id: str = ""
    ) -> bool:
        """Hang up and keep the slot until Daily confirms the end; False if it never did."""
        self.show(result, board.HANGING_UP)
        unanswered = result.status == "no_answer"  # the ring-timeout verdict; the hang-up may overturn it
        late: list[DailyEvent] = []

        def watch(event: DailyEvent) -> None:
            if event.type == "dialout.answered":
                late.append(event)

        ended, event = await hang_up_until_ended(
            self.room, session, user_id, queue, self.creds, self.logger, on_event=watch
        )
        if ended:
            result.stopped_at = _at(event) if event else now()
            if unanswered and not late and event is not None and event.type == "dialout.stopped":
                # An `answered` overtaken in transit or retried by Daily may still come: read the
                # history once more and give it the reconcile grace.
                self.router.on_stall()
                if (answer := await _answered_soon(queue)) is not None:
                    late.append(answer)
            daily_error = event is not None and event.type == "dialout.error" and result.answered_at is None
            verdict = after_hang_up(answered_late=unanswered and bool(late), daily_error=daily_error)
            if verdict is Unanswered.ANSWERED:
                self._answered(late[0], result)
                result.detail = ANSWERED_LATE_DETAIL
            elif verdict is Unanswered.DAILY_DECIDES and event is not None:
                # Daily's own verdict (e.g. 486 busy, 408) came while we hung up: it decides.
                result.status, result.sip_code = outcome_of_error(event.payload.get("error_msg"))
                result.error = event.payload.get("error_msg") or "dial-out error"
            self._on_call(result)
        return ended

    async def watch_dialin(self) -> None:
        while True:
            event = await self.router.room_events.get()
            if event.type == "dialin.ready":
                endpoint = event.payload.get("sip_endpoint")
                if endpoint and endpoint not in self.report.dialin_ready:
                    self.report.dialin_ready.append(endpoint)
                if len(self.report.dialin_ready) >= len(self.report.dialin_endpoints):
                    self.all_ready.set()


async def dial_out(run: CampaignRun, room: str) -> None:
    """Dial every target from ``room`` (a ``dial`` step per leg attempt), with the live board,
    until every leg has ended or the campaign's deadline; then give dial-in readiness a moment.

    Example:
        ```python
        await dial_out(run, room.name)
        ```
    """
    assert run.creds is not None, "prove_credentials() first"
    campaign, report = run.campaign, run.report
    run.dialer = dialer = Dialer(campaign, run.creds, room, run.tag, report, run.router)
    dialer.before_start = run.stop_if_cancelled
    dialer.board = await Board.open(report, run.logger)
    watcher = asyncio.create_task(dialer.watch_dialin())
    try:
        async with asyncio.timeout(campaign.deadline_seconds):
            await dialer.dial_all()
        await await_dialin_ready(report, dialer.all_ready, campaign.ready_timeout_seconds)
    except TimeoutError:
        report.error = f"campaign deadline of {campaign.deadline_seconds:.0f} s reached"
    finally:
        watcher.cancel()
