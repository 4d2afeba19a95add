"""The campaign's steps as Prefect task runs: what a Prefect user sees in the run's graph.

``provision room`` → ``await ready`` → ``dial <bridge> #<attempt>`` (one per leg attempt, for
that leg's whole life) → ``clean up``

Each step is one task run around work whose Daily calls keep their own pacing and retries
(`daily_sip.tasks.retries.inline`) but are not task runs of their own: every task run costs the
Prefect server its state events, so a campaign of K targets pays for K + 3 of them, not for each
Daily call. A step is never retried as a whole (its calls are), never cached, and persists no
result; one that fails shows as a failed task run with the reason.

Users who want a task run per Daily call use the library tasks in `daily_sip.tasks` directly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.states import Cancelled, Completed, Failed

from daily_sip.flows.cleanup.actions import CleanupResult
from daily_sip.flows.cleanup.actions import clean_up as clean_up_legs_and_room
from daily_sip.flows.cleanup.ledger import settle_ledger
from daily_sip.flows.provision import room as provisioning
from daily_sip.flows.report.escape import plain

if TYPE_CHECKING:
    from daily_sip.flows.dial.dialer import Dialer
    from daily_sip.flows.supervision.run import CampaignRun
    from daily_sip.tasks.models import Room

P = ParamSpec("P")
R = TypeVar("R")


def step(
    name: str, task_run_name: str | None = None
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Task[P, Coroutine[Any, Any, R]]]:
    """A campaign step: a task run named for what it does, never retried or cached as a whole."""
    return task(
        name=name,
        task_run_name=task_run_name or name,
        retries=0,
        cache_policy=NO_CACHE,
        persist_result=False,
    )


@step("provision room")
async def provision_room(run: CampaignRun) -> Room:
    """Create the room (or borrow the named one) with SIP dial-in and REST dial-out allowed.

    What to undo is in the run's cleanup ledger before the room is touched.

    Example:
        ```python
        room = await provision_room(run)
        ```
    """
    assert run.creds is not None, "prove_credentials() first"
    run.router.room_since = time.time()  # the room's own events from here on are this run's
    room = await provisioning.provision(run.campaign, run.creds, run.ledger)
    run.report.room_created = run.ledger.created_room
    return room


@step("await ready")
async def await_ready(run: CampaignRun, room: str) -> list[str]:
    """Wait until Daily lists every SIP dial-in endpoint of the room; `NotReadyError` after the timeout.

    Example:
        ```python
        endpoints = await await_ready(run, room.name)
        ```
    """
    assert run.creds is not None, "prove_credentials() first"
    run.report.dialin_endpoints = await provisioning.await_ready(run.campaign, run.creds, room)
    return run.report.dialin_endpoints


@step("dial", task_run_name="dial {bridge} #{attempt}")
async def dial_leg(dialer: Dialer, index: int, attempt: int, bridge: str) -> State:
    """One dial-out leg, start to hang-up: its task run ends with the leg's outcome.

    Completed when the bridge answered or joined, Failed with the reason otherwise (busy, no
    answer, unreachable, dropped after the DTMF script ...), Cancelled when the campaign stopped.

    Example:
        ```python
        state = await dial_leg(dialer, 0, 1, "Zoom ops", return_state=True)
        ```
    """
    result = dialer.report.targets[index]
    try:
        await dialer.attempt(index, dialer.campaign.targets[index], attempt, result)
    except asyncio.CancelledError:
        # The campaign is stopping; the gather above this step re-raises the cancel to the flow.
        if result.status == "unknown":
            result.status, result.detail = "canceled", result.detail or "the campaign stopped"
        return Cancelled(message=f"{bridge}: the campaign stopped during this attempt")
    outcome = result.status.replace("_", " ")
    why = result.error or result.detail
    message = plain(f"{outcome}: {why}" if why else outcome)  # Daily's text: no control characters
    if result.status in ("joined", "answered"):
        return Completed(message=message)
    return Failed(message=message)


async def _clean_up(run: CampaignRun) -> CleanupResult:
    """Cleanup that never raises: anything unexpected is itself reported as pending."""
    run.cleanup_started = True
    ledger = run.ledger
    ledger.report = None  # this run publishes its own report; no crash report from the ledger
    try:
        result = await clean_up_legs_and_room(ledger, run.creds, run.live_sessions)  # type: ignore[arg-type]
    except Exception as exc:
        run.logger.error("cleanup stopped unexpectedly: %s", exc)
        result = CleanupResult(pending=[f"cleanup stopped unexpectedly ({type(exc).__name__}: {exc})"])
    if result.pending:
        run.logger.error(
            "cleanup still pending (kept in ledger %s for the sweeper): %s",
            ledger.variable_name,
            "; ".join(result.pending),
        )
    await settle_ledger(ledger, result)
    run.report.cleanup, run.report.cleanup_pending = result.actions, result.pending
    return result


@step("clean up")
async def _clean_up_step(run: CampaignRun) -> State:
    result = await _clean_up(run)
    if result.pending:
        return Failed(message="still pending, left for the sweeper: " + "; ".join(result.pending))
    return Completed(message="; ".join(result.actions) or "nothing was left")


async def clean_up(run: CampaignRun) -> None:
    """Hang up what is still up, turn SIP off, delete the room the run created (or restore a borrowed one).

    A step like the others; its Daily work runs even when Prefect cannot record the task run. It
    runs once per run, to the end even if the run is cancelled meanwhile (a second call, e.g. from
    `supervise` on the way out, waits for the same cleanup). Nothing happens for a run that touched
    nothing (no room created or borrowed yet).

    Example:
        ```python
        await clean_up(run)  # run.report.cleanup / cleanup_pending say what was done / is left
        ```
    """
    if run.cleanup is None:
        if not (run.ledger.created_room or run.ledger.restore):
            return
        run.cleanup = asyncio.ensure_future(_recorded_clean_up(run))
    await asyncio.shield(run.cleanup)


async def _recorded_clean_up(run: CampaignRun) -> None:
    try:
        # Prefect types `return_state=True` as a State; for an async task it is awaitable.
        await cast(Awaitable[State], _clean_up_step(run, return_state=True))
    except Exception as exc:
        if run.cleanup_started:  # the work ran; only its record in Prefect failed
            run.logger.warning("the clean-up step could not be recorded in Prefect: %s", exc)
        else:
            run.logger.warning("the clean-up step could not start in Prefect (%s); cleaning up anyway", exc)
            await _clean_up(run)
