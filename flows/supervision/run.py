"""One campaign run's working state, and `supervise`: what keeps the nothing-left promise around it.

The flow body (`daily_sip.flows.dial_campaign`) is the card's sentence; everything that is not a
step lives here. `supervise(run)` is entered before anything is touched and, on every way out
(success, a Daily error, a deadline, Cancel in the UI, a dead worker, a worker shutting down):

* stops the cancel and dead-worker watches (a cancel from then on would only cut the cleanup short);
* runs the ``clean up`` step unless the flow already did (shielded: it always finishes);
* closes the report (`daily_sip.flows.report.publish.close_out`) and publishes it;
* lets go of the heartbeat and of the borrowed room's lock.

A cancel asked for in the UI ends the run Cancelled *with* its report; any other interruption is
recorded in the report and propagates, so Prefect sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

from prefect import get_run_logger
from prefect.context import FlowRunContext

from daily_sip.flows.campaign.model import Campaign
from daily_sip.flows.cleanup.heartbeat import Heartbeat
from daily_sip.flows.cleanup.ledger import CrashReportSnapshot, Ledger
from daily_sip.flows.collect import results
from daily_sip.flows.collect.listener import EventRouter
from daily_sip.flows.collect.verify import EventVerifier
from daily_sip.flows.dial.dialer import Dialer, now
from daily_sip.flows.provision.preflight import proven_credentials
from daily_sip.flows.provision.room import NotReadyError
from daily_sip.flows.provision.room_lock import room_lock
from daily_sip.flows.report.board import Board
from daily_sip.flows.report.model import CampaignReport, TargetResult
from daily_sip.flows.report.naming import slug
from daily_sip.flows.report.publish import close_out
from daily_sip.flows.steps import clean_up
from daily_sip.flows.supervision.cancel_watch import ASKED, cancel_watch
from daily_sip.flows.supervision.start_window import TooLateError, too_late, window_of
from daily_sip.flows.sweeper import RoomLeftoversError
from daily_sip.tasks import DailyCredentials, DailyError
from daily_sip.tasks.ratelimit import place_in_line

# How often a run under a `process` worker checks that its worker is still alive (a local
# check, no API call).
ORPHAN_CHECK_SECONDS = 1.0

# What stops a campaign but is the campaign's verdict, not a crash: recorded in its report.
STOPS = (DailyError, TimeoutError, NotReadyError, RoomLeftoversError, TooLateError)


class CampaignRun:
    """One run of the campaign flow: its report, cleanup ledger and event router, before anything
    is touched; the steps fill in the credentials, the dialler and the board.

    Example:
        ```python
        run = CampaignRun(campaign, credentials_block="")
        async with supervise(run):
            ...  # the steps
        ```
    """

    def __init__(self, campaign: Campaign, credentials_block: str = "") -> None:
        context = FlowRunContext.get()
        self.flow_run_id = str(context.flow_run.id) if context and context.flow_run else "local"
        self.in_flow_run = bool(context and context.flow_run)
        self.tag = self.flow_run_id.replace("-", "")[:8]
        self.campaign = campaign
        self.credentials_block = credentials_block
        self.room_name = campaign.room or f"{slug(campaign.name)}-{self.tag}"
        self.logger = get_run_logger()
        self.report = CampaignReport(
            campaign=campaign.name,
            room=self.room_name,
            flow_run_id=self.flow_run_id,
            started_at=now(),
            targets=[
                TargetResult(
                    index=i,
                    sip_uri=t.uri,
                    display_name=t.display_name,
                    bridge=t.bridge,
                    dtmf_script=t.plan.dtmf,
                )
                for i, t in enumerate(campaign.targets)
            ],
            required=campaign.success.required(len(campaign.targets)),
            success_counts=campaign.success.counts,
        )
        flow_run = context.flow_run if context else None
        self.due = flow_run.expected_start_time if flow_run else None
        self.start_window = window_of(
            campaign.start_window_seconds, bool(flow_run and flow_run.auto_scheduled)
        )
        self.ledger = Ledger(
            flow_run_id=self.flow_run_id,
            room=self.room_name,
            user_prefix=f"{self.tag}-",
            delete_room=campaign.delete_created_room,
            credentials_block=credentials_block,
        )
        self.ledger.report = self.report.model_dump(mode="json")  # saved with the ledger, for a crash report
        # Until the credentials are loaded nothing can be verified; no event is read before that.
        self.router = EventRouter(EventVerifier(None), self.room_name)
        self.creds: DailyCredentials | None = None
        self.dialer: Dialer | None = None
        self.cleanup: asyncio.Future[None] | None = None  # the clean-up step, once started
        self.cleanup_started = False
        self.cancel_asked = asyncio.Event()
        self.orphaned = asyncio.Event()
        self.worker_stopping = asyncio.Event()
        self.held = contextlib.AsyncExitStack()
        self.body: asyncio.Task[Any] | None = None  # the flow's task, once supervised

    async def stop_if_cancelled(self) -> None:
        """Before each dial-out: a fresh read of this run's state; a cancel request stops it here.

        The watches notice a cancel within a second; this closes that second for new calls:
        a run asked to cancel starts no call after the read that saw it.
        """
        if not self.in_flow_run:
            return
        if await cancel_watch().cancelled(self.flow_run_id):
            self.cancel_asked.set()
            if self.body is not None:
                self.body.cancel()  # the whole campaign stops, not only this leg
            raise asyncio.CancelledError

    @property
    def board(self) -> Board | None:
        """The live board, once dialling has begun."""
        return self.dialer.board if self.dialer else None

    @property
    def live_sessions(self) -> set[str]:
        return self.dialer.live if self.dialer else set()

    def check_start_window(self) -> None:
        """Stop before anything is touched when the run starts past its start window."""
        reason = too_late(self.due, now(), self.start_window)
        if reason is not None:
            for target in self.report.targets:
                target.detail = "not dialled: the run started past its start window"
            raise TooLateError(reason)

    async def prove_credentials(self) -> DailyCredentials:
        """Load the credentials and prove key and URL with one cheap call, before anything is touched."""
        creds = await proven_credentials(self.credentials_block)
        self.creds = creds
        self.router.verifier = EventVerifier(creds.webhook_secret)
        if not self.router.verifier.can_verify:
            self.logger.error(
                "the credentials have no webhook_secret: Daily's events cannot be verified, so none "
                "will be trusted; set it to the secret the Daily webhook signs with"
            )
        return creds

    async def lock_room(self) -> None:
        """One campaign at a time in a borrowed room, until this run has cleaned up."""
        if self.campaign.room:
            await self.hold(
                room_lock(
                    self.campaign.room, self.campaign.deadline_seconds, self.logger, holder=self.flow_run_id
                )
            )

    async def hold(self, held: AbstractAsyncContextManager[Any]) -> None:
        """Keep ``held`` entered until the run has cleaned up and published its report."""
        await self.held.enter_async_context(held)

    def why_stopped(self, exc: BaseException) -> str:
        if isinstance(exc, asyncio.CancelledError) and self.cancel_asked.is_set():
            return "cancelled on request"
        if self.orphaned.is_set():
            return "stopped: the worker that supervised this run died"
        if self.worker_stopping.is_set():
            return "stopped: the worker running this campaign was shut down"
        return f"interrupted ({type(exc).__name__})"


def _own_process() -> bool:
    """True in a flow-run process a worker or `serve` started (they set PREFECT__FLOW_RUN_ID)."""
    return bool(os.environ.get("PREFECT__FLOW_RUN_ID"))


async def _watch_parent(body: asyncio.Task[Any], orphaned: asyncio.Event) -> None:
    """Stop the campaign, with its cleanup, when the worker that started this process died.

    A worker or `serve` watches its runs for cancellation itself, kills a cancelled run's process
    and runs the on_cancellation hook. A worker killed outright (``kill -9``) leaves its
    flow-run child unsupervised, so the child stops itself within `ORPHAN_CHECK_SECONDS` of its
    parent disappearing (it is re-parented). Runs sharing a process (`daily-sip run`, the
    in-process `daily-sip worker`) are watched by `cancel_watch` instead.
    """
    parent = os.getppid()
    while True:
        await asyncio.sleep(ORPHAN_CHECK_SECONDS)
        if os.getppid() != parent:
            orphaned.set()
            body.cancel()
            return


@contextlib.contextmanager
def _stop_watches(run: CampaignRun, body: asyncio.Task[Any]) -> Any:
    """Cancel ``body`` when the run is cancelled in the UI, its worker dies or shuts down."""
    if not run.in_flow_run:
        yield
        return
    if _own_process():
        parent_watch = asyncio.create_task(_watch_parent(body, run.orphaned))
        try:
            yield
        finally:
            parent_watch.cancel()
        return

    def stop(why: str) -> None:
        (run.cancel_asked if why == ASKED else run.worker_stopping).set()
        body.cancel()

    with cancel_watch().watching(run.flow_run_id, stop):
        yield


@contextlib.asynccontextmanager
async def _in_place() -> AsyncIterator[None]:
    with place_in_line():
        yield


@contextlib.asynccontextmanager
async def supervise(run: CampaignRun) -> AsyncIterator[CampaignRun]:
    """Watches, heartbeat, and on every way out: clean up, close and publish the report (module doc)."""
    cpu_at_start = time.process_time()
    body = asyncio.current_task()
    assert body is not None
    run.body = body
    watches = contextlib.ExitStack()
    watches.enter_context(_stop_watches(run, body))
    # The shared pacer serves campaigns oldest first, this one's cleanup included.
    await run.hold(_in_place())
    await run.hold(Heartbeat(run.ledger, snapshot=CrashReportSnapshot(run.report)))
    try:
        yield run
    except STOPS as exc:
        run.report.error = str(exc)
        run.logger.error("campaign stopped: %s", exc)
    except BaseException as exc:
        # Cancelled or interrupted: recorded, cleaned up below, then propagated, unless it is our
        # own answer to a cancel request: then the run ends Cancelled with its report.
        run.report.error = run.why_stopped(exc)
        if not (isinstance(exc, asyncio.CancelledError) and run.cancel_asked.is_set()):
            raise
        body.uncancel()
    finally:
        watches.close()  # a cancel from here on would only cut the cleanup and the report short
        await clean_up(run)  # the flow's own, or now: once, shielded from a cancel
        await results.take_late_answers(run.report, run.router, run.tag, run.logger)
        results.count_forged(run.report, run.router, run.logger)
        await close_out(run.report, run.board, run.logger, cpu_at_start)
        await run.held.aclose()  # the room is free for the next campaign once it is cleaned up
