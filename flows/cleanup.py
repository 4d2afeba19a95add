"""Turning off what a campaign turned on, on every exit path, even while Daily is failing.

The flow writes a small ledger (room, whether it created it, the properties it must restore)
to a Prefect Variable ``daily_campaign_<run id>`` *before* touching anything, and refreshes its
``alive_at`` every `HEARTBEAT_SECONDS` while it runs. Its own ``finally`` cleans up; if the run
is cancelled or crashes instead, the ``on_cancellation`` / ``on_crashed`` hook reads the ledger
(possibly in the runner's process) and does the same. A run killed outright (``kill -9``) runs
neither: its ledger stops being refreshed and the sweeper (`flows/sweeper.py`) finishes it.

Each cleanup step is retried with backoff for up to `CLEANUP_BUDGET_SECONDS` of Daily errors
(5xx, 429, timeouts). Whatever is still undone then is written back to the ledger as
``pending`` for the sweeper; the ledger is removed only when nothing is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, Field, PrivateAttr

from daily_sip.tasks import DailyCredentials, DailyError, DailyNotFoundError
from daily_sip.tasks.dialout import astop_dial_out
from daily_sip.tasks.presence import aget_room_presence
from daily_sip.tasks.retries import inline
from daily_sip.tasks.rooms import adelete_room, aget_room, aupdate_room

from .per_loop import per_loop

logger = logging.getLogger("daily_sip.cleanup")
T = TypeVar("T")

# How long cleanup keeps retrying a step while Daily answers 5xx/429 or times out: well past a
# minute of errors, bounded so a run still ends. What is left then goes to the sweeper.
CLEANUP_BUDGET_SECONDS = 240.0
# Backoff between attempts of one step (each attempt is itself a task with its own short retries).
BACKOFF_START_SECONDS, BACKOFF_MAX_SECONDS = 1.0, 20.0
# How often a running campaign refreshes its ledger's ``alive_at``; the sweeper treats a ledger
# not refreshed for `sweeper.GRACE_SECONDS` as orphaned.
HEARTBEAT_SECONDS = 10.0
# A room whose create request went out but whose answer never came may appear a little later
# (the request was still in flight when the run stopped); cleanup watches for it this long.
CREATE_SETTLE_SECONDS = 6.0

LEDGER_PREFIX = "daily_campaign_"
# Prefect refuses a Variable whose JSON is longer than this (``prefect.types.MAX_VARIABLE_VALUE_LENGTH``);
# a ledger over it would stop being refreshed and the sweeper would take a live run for dead.
VARIABLE_LIMIT = 5000
# What a crash report needs of a target, in the order they are given up when the ledger is too big.
_TARGET_EXTRAS = (
    "dialed_at",
    "connected_at",
    "answered_at",
    "joined_at",
    "stopped_at",
    "seconds_to_answer",
    "seconds_to_joined",
    "dtmf_script",
    "dtmf_sent",
    "error",
    "detail",
)


class Ledger(BaseModel):
    flow_run_id: str
    room: str
    user_prefix: str = Field(description="userId prefix of every leg this run started")
    created_room: bool = False
    room_confirmed: bool = Field(default=False, description="Daily answered the create/update")
    delete_room: bool = True
    restore: dict[str, Any] = Field(default_factory=dict, description="room properties to put back")
    credentials_block: str | None = None
    alive_at: float | None = Field(default=None, description="unix seconds of the last heartbeat")
    process: str | None = Field(
        default=None,
        description="the running process's heartbeat Variable (`ProcessBeat`): the run "
        "is alive while it is fresh",
    )
    pending: list[str] = Field(default_factory=list, description="cleanup steps still undone")
    report: dict[str, Any] | None = Field(
        default=None, description="the run's CampaignReport as of its last heartbeat, for a crash report"
    )
    # Set once cleanup settled the ledger (dropped or handed to the sweeper): no more heartbeats.
    _settled: bool = PrivateAttr(default=False)
    # This process has written the Variable already (a heartbeat then updates it in place).
    _stored: bool = PrivateAttr(default=False)
    _lock: asyncio.Lock | None = PrivateAttr(default=None)

    @property
    def lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    @property
    def variable_name(self) -> str:
        return ledger_variable(self.flow_run_id)


def ledger_variable(flow_run_id: str) -> str:
    return f"{LEDGER_PREFIX}{str(flow_run_id).replace('-', '_')}"


def report_snapshot(report: Any) -> dict[str, Any]:
    """The part of a CampaignReport a crash report needs: no timeline, no DTMF steps, no defaults."""
    return report.model_dump(
        mode="json",
        exclude_none=True,
        exclude_defaults=True,
        exclude={"timeline": True, "notes": True, "targets": {"__all__": {"dtmf_steps", "session_ids"}}},
    )


def _json_len(value: Any) -> int:
    import json

    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def ledger_value(ledger: Ledger) -> dict[str, Any]:
    """The ledger as stored: always within Prefect's Variable limit.

    The cleanup fields are small and always kept; the report snapshot gives up per-target
    detail, then the whole report (the sweeper then cleans up without publishing a report).
    """
    value = ledger.model_dump(mode="json")
    if _json_len(value) <= VARIABLE_LIMIT or not value.get("report"):
        return value
    report = dict(value["report"])
    report["targets"] = [
        {k: v for k, v in t.items() if k not in _TARGET_EXTRAS} for t in report.get("targets", [])
    ]
    value["report"] = report
    if _json_len(value) <= VARIABLE_LIMIT:
        return value
    value["report"] = None
    return value


async def put_variable(name: str, value: Any, *, exists: bool) -> None:
    """Write a Prefect Variable in one request: update it when this process wrote it before
    (``exists``), else create it. (``Variable.aset`` reads before it writes, and every heartbeat
    would pay for that on the Prefect server.) One dropped meanwhile is created again; one left
    by an earlier write whose answer was lost is updated.
    """
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import VariableCreate, VariableUpdate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    async with get_client() as client:
        if exists:
            try:
                await client.update_variable(VariableUpdate(name=name, value=value))
                return
            except (ObjectNotFound, httpx.HTTPStatusError) as exc:
                if getattr(getattr(exc, "response", None), "status_code", 404) != 404:
                    raise
        try:
            await client.create_variable(VariableCreate(name=name, value=value))
        except ObjectAlreadyExists:
            await client.update_variable(VariableUpdate(name=name, value=value))


async def save_ledger(ledger: Ledger) -> None:
    ledger.alive_at = time.time()
    await put_variable(ledger.variable_name, ledger_value(ledger), exists=ledger._stored)
    ledger._stored = True


async def load_ledger(flow_run_id: str) -> Ledger | None:
    from prefect.variables import Variable

    value = await Variable.aget(ledger_variable(flow_run_id), default=None)
    return Ledger.model_validate(value) if value else None


async def drop_ledger(flow_run_id: str) -> None:
    from prefect.variables import Variable

    await Variable.aunset(ledger_variable(flow_run_id))


async def credentials_for(block_name: str | None) -> DailyCredentials:
    if block_name:
        return await DailyCredentials.aload(block_name)
    return DailyCredentials.from_env()


PROCESS_PREFIX = "daily_sip_process_"


class ProcessBeat:
    """One heartbeat for every campaign of this process (event loop): a Variable refreshed every
    `HEARTBEAT_SECONDS` while any campaign runs here.

    Each ledger names it (``Ledger.process``), and the sweeper counts a ledger alive while its
    process's beat is fresh. A beat per campaign, written whether anything changed or not, was
    Prefect server load that grew with every campaign waiting its turn for Daily's rate limit;
    now a waiting campaign costs nothing and a ledger is written only when it changes.
    """

    def __init__(self) -> None:
        self.name = f"{PROCESS_PREFIX}{uuid.uuid4().hex[:16]}"
        self._stored = False
        self._users = 0
        self._task: asyncio.Task[None] | None = None

    async def join(self) -> str:
        self._users += 1
        if self._task is None:
            await self._write()  # fresh before the first ledger names it
            # A fresh context: the beat serves every campaign, not the one that started it.
            self._task = asyncio.get_running_loop().create_task(
                self._beat(), name="daily-sip-process-beat", context=contextvars.Context()
            )
        return self.name

    def leave(self) -> None:
        self._users -= 1
        if self._users <= 0 and self._task is not None:
            self._task.cancel()
            self._task = None
            asyncio.get_running_loop().create_task(self._drop(), context=contextvars.Context())

    async def _write(self) -> None:
        value = {"alive_at": time.time(), "host": socket.gethostname(), "pid": os.getpid()}
        await put_variable(self.name, value, exists=self._stored)
        self._stored = True

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await self._write()
            except Exception as exc:  # a Prefect API blip must not end any campaign
                logger.warning("could not refresh this process's heartbeat: %s", exc)

    async def _drop(self) -> None:
        from prefect.variables import Variable

        with contextlib.suppress(Exception):
            await Variable.aunset(self.name)


process_beat = per_loop(ProcessBeat)


class Heartbeat:
    """Keeps a run alive for the sweeper (its process's `ProcessBeat`) and its saved ledger's
    crash report current: the ledger is rewritten when ``snapshot`` changed, at most every
    ``every`` seconds.

    Example:
        ```python
        async with Heartbeat(ledger):
            ...  # provision, dial, clean up
        ```
    """

    def __init__(
        self,
        ledger: Ledger,
        every: float = HEARTBEAT_SECONDS,
        snapshot: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.ledger, self.every, self.snapshot = ledger, every, snapshot
        self._task: asyncio.Task[None] | None = None
        self._beat_of: ProcessBeat | None = None

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            async with self.ledger.lock:
                # Only a ledger that was saved (something was touched) and not yet settled.
                if self.ledger.alive_at is None or self.ledger._settled:
                    continue
                try:
                    if self.snapshot is not None:
                        report = self.snapshot()
                        if report == self.ledger.report:
                            continue  # the process's beat says the run is alive; nothing new
                        self.ledger.report = report
                    await save_ledger(self.ledger)
                except Exception as exc:  # a Prefect API blip must not end the campaign
                    logger.warning("could not refresh the cleanup ledger: %s", exc)

    async def __aenter__(self) -> Heartbeat:
        self._beat_of = process_beat()
        self.ledger.process = await self._beat_of.join()
        self._task = asyncio.create_task(self._beat())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._beat_of is not None:
            self._beat_of.leave()


async def persist(step: Callable[[], Awaitable[T]], deadline: float, what: str) -> T:
    """Run ``step`` until it succeeds, a permanent error, or ``deadline`` (monotonic) passes.

    Transient Daily errors (5xx, 429, timeouts) are retried with backoff; the last one is
    raised at the deadline. Permanent ones (4xx, e.g. 404) are raised at once.

    Example:
        ```python
        await persist(lambda: inline(adelete_room, "r", credentials=creds), time.monotonic() + 60, "delete")
        ```
    """
    delay = BACKOFF_START_SECONDS
    while True:
        try:
            return await step()
        except DailyError as exc:
            if not exc.transient or time.monotonic() + delay > deadline:
                raise
            logger.warning("%s failed (%s); retrying in %.0f s", what, exc, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, BACKOFF_MAX_SECONDS)


class CleanupResult(BaseModel):
    actions: list[str] = Field(default_factory=list, description="what was done")
    pending: list[str] = Field(default_factory=list, description="what is still undone")

    @property
    def done(self) -> bool:
        return not self.pending


async def _run_legs(ledger: Ledger, creds: DailyCredentials, deadline: float) -> set[str]:
    presence = await persist(
        lambda: inline(aget_room_presence, ledger.room, credentials=creds),
        deadline,
        f"presence of {ledger.room}",
    )
    return {p.id for p in presence.data if (p.user_id or "").startswith(ledger.user_prefix)}


async def clean_up(
    ledger: Ledger, creds: DailyCredentials, live_sessions: set[str], budget_seconds: float | None = None
) -> CleanupResult:
    """Hang up this run's legs, then delete the room it created or restore the one it borrowed.

    Every step is retried for up to ``budget_seconds`` (default `CLEANUP_BUDGET_SECONDS`) of
    transient Daily errors and tried even if an earlier one failed. Never raises a Daily error:
    what could not be done is listed in ``pending``.

    Example:
        ```python
        result = await clean_up(ledger, creds, set())
        if not result.done:
            print("left for the sweeper:", result.pending)
        ```
    """
    budget = CLEANUP_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    deadline = time.monotonic() + budget
    deleting = ledger.created_room and ledger.delete_room
    # Deleting a room also ends its calls, so hang-ups must not use up the deletion's budget.
    legs_deadline = time.monotonic() + budget / 2 if deleting else deadline
    out = CleanupResult()
    to_stop = set(live_sessions)
    room_gone = False
    try:
        to_stop |= await _run_legs(ledger, creds, legs_deadline)
    except DailyNotFoundError:
        to_stop.clear()  # no room, no legs
        room_gone = True
    except DailyError as exc:
        out.pending.append(f"read presence of {ledger.room} ({exc})")
    hung_up = 0
    for session_id in sorted(to_stop):
        try:
            await persist(
                lambda s=session_id: inline(astop_dial_out, ledger.room, s, credentials=creds),
                legs_deadline,
                f"hang up {session_id}",
            )
            hung_up += 1
        except DailyNotFoundError:
            pass  # the room is gone or not hosting a call: the leg has ended
        except DailyError as exc:
            out.pending.append(f"hang up {session_id} ({exc})")
    if hung_up:
        out.actions.append(f"hung up {hung_up} leg(s) still up")

    if deleting:
        await _delete_created_room(ledger, creds, deadline, out, room_gone)
    elif ledger.restore and not room_gone:
        await _restore_borrowed_room(ledger, creds, deadline, out)
    elif ledger.restore:
        out.actions.append("room already gone")
    return out


async def _delete_created_room(
    ledger: Ledger, creds: DailyCredentials, deadline: float, out: CleanupResult, room_gone: bool
) -> None:
    try:
        result = await persist(
            lambda: inline(adelete_room, ledger.room, credentials=creds),
            deadline,
            f"delete room {ledger.room}",
        )
    except DailyError as exc:
        out.pending = [p for p in out.pending if not p.startswith("hang up")]  # deletion ends them
        out.pending.append(f"delete room {ledger.room} ({exc})")
        return
    # Deleting the room ends every leg in it, so failed hang-ups are no longer pending.
    out.pending = [p for p in out.pending if not p.startswith(("hang up", "read presence"))]
    if not result.already_gone:
        out.actions.append(f"deleted room {ledger.room}")
        return
    if ledger.room_confirmed:
        out.actions.append("room already gone")
        return
    # The create request went out but its answer never came (cancelled or lost): the room may
    # still appear. Watch for it a little while, then leave it to the sweeper.
    settle = time.monotonic() + CREATE_SETTLE_SECONDS
    while time.monotonic() < settle:
        await asyncio.sleep(0.5)
        try:
            late = await inline(adelete_room, ledger.room, credentials=creds)
        except DailyError:
            continue
        if not late.already_gone:
            out.actions.append(f"deleted room {ledger.room} (created after the run stopped)")
            return
    out.actions.append("room never created")


async def _restore_borrowed_room(
    ledger: Ledger, creds: DailyCredentials, deadline: float, out: CleanupResult
) -> None:
    try:
        await persist(
            lambda: inline(aupdate_room, ledger.room, properties=ledger.restore, credentials=creds),
            deadline,
            f"restore room {ledger.room}",
        )
        room = await persist(
            lambda: inline(aget_room, ledger.room, credentials=creds), deadline, f"read room {ledger.room}"
        )
    except DailyNotFoundError:
        out.actions.append("room already gone")
        return
    except DailyError as exc:
        out.pending.append(f"restore room {ledger.room} ({exc})")
        return
    if ledger.restore.get("sip", "absent") is None:
        state = "SIP off" if not room.sip_enabled else "SIP STILL ON"
    else:
        state = "SIP settings restored"
    restored = ", ".join(k for k in ledger.restore if k != "sip")
    out.actions.append(f"{state} in room {ledger.room}" + (f"; restored {restored}" if restored else ""))


async def settle_ledger(ledger: Ledger, result: CleanupResult) -> None:
    """Drop the ledger when cleanup finished; otherwise keep it, with what is pending, for the sweeper."""
    async with ledger.lock:
        ledger._settled = True
        await _settle(ledger, result)


async def _settle(ledger: Ledger, result: CleanupResult) -> None:
    for _ in range(5):
        try:
            if result.done:
                await drop_ledger(ledger.flow_run_id)
            else:
                # Handed to the sweeper: the process's heartbeat no longer speaks for this run.
                ledger.pending, ledger.process = list(result.pending), None
                await save_ledger(ledger)
            return
        except Exception as exc:  # the Prefect API is down for a moment: try again
            logger.warning("could not update the cleanup ledger %s: %s", ledger.variable_name, exc)
            await asyncio.sleep(2.0)


async def publish_crash_report(ledger: Ledger, result: CleanupResult, why: str) -> None:
    """Publish the per-target report of a run that could not publish it itself (from its ledger)."""
    from .publish import publish_for_run
    from .report import CampaignReport

    if not ledger.report:
        return
    try:
        report = CampaignReport.model_validate(ledger.report)
    except ValueError:
        return
    from datetime import UTC, datetime

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
