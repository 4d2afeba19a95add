"""The sweeper: finishes the cleanup of campaigns that can no longer clean up for themselves.

Every campaign keeps a cleanup ledger (Prefect Variable ``daily_campaign_<run id>``, see
`flows/cleanup/ledger.py`) while it has something turned on; the run's process refreshes one heartbeat
Variable (``daily_sip_process_*``, `cleanup.ProcessBeat`) every `cleanup.HEARTBEAT_SECONDS` for
all of its campaigns. A ledger is **orphaned** when its run is in a final state, or the run does
not exist, or neither the ledger nor its process's heartbeat was refreshed for ``grace_seconds``
(default `GRACE_SECONDS`): the process was killed (``kill -9``), its host died, or its cleanup
ran out of budget while Daily was failing and left ``pending`` steps.

For each orphaned ledger the sweeper hangs up the run's legs (by its userId prefix), deletes the
room it created, or restores the borrowed room's *original* properties (the ledger's ``restore``,
written before the run touched the room), each step with `cleanup.clean_up`'s retries; then drops
the ledger, or keeps it with what is still pending for the next sweep.

It never touches a live run's room: a ledger with a fresh heartbeat is left alone, and for a
borrowed room the sweeper first takes the room's lock (`flows/room_lock.py`), so a campaign
running in that room now is never disturbed (that campaign adopted the orphan on arrival, see
`clear_orphans_of_room`).

Every ``daily-sip worker`` sweeps too, every `RESIDENT_SWEEP_SECONDS` with a grace of
`RESIDENT_GRACE_SECONDS` (`resident_sweep`): a worker killed outright has its campaigns' legs hung
up and rooms restored by its peers within about 70 s (heartbeat age 45 s + up to 20 s to the next
sweep + the cleanup itself), and its runs marked Crashed. ``daily-sip sweep --every 20`` is the same
loop for fleets of ``process`` workers. Run it once as ``daily-sip sweep``, or let the
``sweep-ledgers`` deployment do it every few minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from typing import Any

from prefect import flow, get_run_logger
from pydantic import BaseModel, Field

from daily_sip.flows.cleanup.actions import clean_up
from daily_sip.flows.cleanup.crash import publish_crash_report
from daily_sip.flows.cleanup.heartbeat import HEARTBEAT_SECONDS, PROCESS_PREFIX
from daily_sip.flows.cleanup.ledger import LEDGER_PREFIX, Ledger, credentials_for, settle_ledger
from daily_sip.flows.provision.room_lock import LEASE_SECONDS, RoomLock
from daily_sip.flows.supervision.storage import RESULT_STORAGE

# A ledger not refreshed for this long belongs to a run that is gone (6 missed heartbeats).
GRACE_SECONDS = 60.0
# The sweep every `daily-sip worker` runs: how often, and after how long without a heartbeat a
# run counts as dead (4.5 missed beats: a Prefect API blip of half a minute kills no live run).
RESIDENT_SWEEP_SECONDS = 20.0
RESIDENT_GRACE_SECONDS = 45.0
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


class SweepReport(BaseModel):
    finished: list[str] = Field(default_factory=list, description="runs whose cleanup is now done")
    pending: dict[str, list[str]] = Field(default_factory=dict, description="runs still not clean")
    live: list[str] = Field(default_factory=list, description="runs left alone: still alive")
    busy: list[str] = Field(default_factory=list, description="orphans whose room a live campaign holds")


async def _read_variables(client: Any, prefix: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        response = await client.request(
            "POST",
            "/variables/filter",
            json={"variables": {"name": {"like_": f"{prefix}%"}}, "limit": 200, "offset": len(rows)},
        )
        page = response.json()
        rows += [row for row in page if row["name"].startswith(prefix)]
        if len(page) < 200:
            return rows


async def read_ledgers(client: Any) -> list[tuple[Ledger, float]]:
    """Every cleanup ledger with the unix time its run was last known alive: the ledger's own
    write or its process's heartbeat (`cleanup.ProcessBeat`), whichever is later."""
    beats = {
        row["name"]: row["value"].get("alive_at", 0.0)
        for row in await _read_variables(client, PROCESS_PREFIX)
        if isinstance(row.get("value"), dict)
    }
    out: list[tuple[Ledger, float]] = []
    for row in await _read_variables(client, LEDGER_PREFIX):
        if not isinstance(row.get("value"), dict):
            continue
        try:
            ledger = Ledger.model_validate(row["value"])
        except ValueError:
            continue
        written = ledger.alive_at or _unix(row.get("updated") or row.get("created"))
        out.append((ledger, max(written, beats.get(ledger.process or "", 0.0))))
    return out


def _unix(stamp: str | None) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else 0.0


async def orphaned_because(ledger: Ledger, written: float, client: Any, grace_seconds: float) -> str | None:
    """Why this ledger's run can no longer clean up, or None while it may still do so itself."""
    age = time.time() - written
    state = None
    try:
        run = await client.read_flow_run(uuid.UUID(ledger.flow_run_id))
        state = run.state.type.value if run.state else None
    except Exception:
        run = None
    if run is None:
        return f"no flow run {ledger.flow_run_id}; ledger idle {age:.0f} s" if age >= grace_seconds else None
    if state in FINAL_STATES and age >= min(grace_seconds, 1.5 * HEARTBEAT_SECONDS):
        return f"run ended {state}"
    if age >= grace_seconds:
        return f"run is {state} but sent no heartbeat for {age:.0f} s"
    return None


async def sweep_one(ledger: Ledger, logger: Any) -> list[str]:
    """Finish one orphan's cleanup; returns what is still pending (empty when done)."""
    creds = await credentials_for(ledger.credentials_block)
    result = await clean_up(ledger, creds, set())
    if ledger.report:  # the run died before publishing its own report
        await publish_crash_report(ledger, result, "the run died; cleaned up by the sweeper")
    await settle_ledger(ledger, result)
    logger.info(
        "swept run %s (room %s): %s%s",
        ledger.flow_run_id,
        ledger.room,
        "; ".join(result.actions) or "nothing was left",
        f"; still pending: {'; '.join(result.pending)}" if result.pending else "",
    )
    return result.pending


@flow(
    name="sweep-ledgers",
    description="Finish the cleanup of campaign runs that died or gave up.",
    persist_result=False,
    result_storage=RESULT_STORAGE,
)
async def sweep_ledgers(grace_seconds: float = GRACE_SECONDS) -> SweepReport:
    """Find every orphaned cleanup ledger and finish its cleanup.

    Example:
        ```python
        from daily_sip.flows.sweeper import sweep_ledgers

        report = await sweep_ledgers()
        print(report.finished, report.pending)
        ```
    """
    return await sweep(grace_seconds, get_run_logger())


async def sweep(grace_seconds: float, logger: Any, quiet: bool = False) -> SweepReport:
    """One sweep, outside or inside a flow run (`sweep_ledgers`, `resident_sweep`); ``quiet``:
    no summary line when there was nothing to do."""
    from prefect.client.orchestration import get_client

    report = SweepReport()
    async with get_client() as client:
        for ledger, written in await read_ledgers(client):
            reason = await orphaned_because(ledger, written, client, grace_seconds)
            if reason is None:
                report.live.append(ledger.flow_run_id)
                continue
            logger.warning(
                "run %s cannot clean up for itself (%s); sweeping room %s",
                ledger.flow_run_id,
                reason,
                ledger.room,
            )
            await _mark_crashed(client, ledger.flow_run_id, reason, logger)
            lock: RoomLock | None = None
            if not ledger.created_room:
                lock = RoomLock(ledger.room, holder=f"sweeper-{uuid.uuid4().hex[:8]}")
                if not await lock.try_acquire(client):
                    report.busy.append(ledger.flow_run_id)
                    continue
            try:
                pending = await sweep_one(ledger, logger)
            finally:
                if lock is not None:
                    await lock.release(client)
            if pending:
                report.pending[ledger.flow_run_id] = pending
            else:
                report.finished.append(ledger.flow_run_id)
        # Heartbeats of processes that died (kill -9) stay behind; their ledgers were judged above.
        for row in await _read_variables(client, PROCESS_PREFIX):
            alive = row.get("value", {}).get("alive_at", 0.0) if isinstance(row.get("value"), dict) else 0.0
            if time.time() - alive > 2 * grace_seconds:
                with contextlib.suppress(Exception):  # gone already: another sweeper was quicker
                    await client.request(
                        "DELETE", "/variables/name/{name}", path_params={"name": row["name"]}
                    )
    if not quiet or report.finished or report.pending or report.busy:
        logger.info(
            "sweep: %d finished, %d still pending, %d live, %d in a busy room",
            len(report.finished),
            len(report.pending),
            len(report.live),
            len(report.busy),
        )
    return report


_resident_log = logging.getLogger("daily_sip.sweeper")


async def resident_sweep(
    every: float = RESIDENT_SWEEP_SECONDS, grace_seconds: float = RESIDENT_GRACE_SECONDS
) -> None:
    """Sweep every ``every`` seconds until cancelled: what each `daily-sip worker` runs beside its
    campaigns, so a dead peer's campaigns are cleaned up within about a minute, with no operator.

    Several workers may sweep the same orphan at once: every cleanup step is idempotent (a leg
    hung up twice, a room deleted twice), and a borrowed room is swept under its room lock.

    Example:
        ```python
        sweeper = asyncio.create_task(resident_sweep())
        ```
    """
    while True:
        # Spread the fleet's sweeps apart rather than all at the same second.
        await asyncio.sleep(every * random.uniform(0.75, 1.0))
        try:
            await sweep(grace_seconds, _resident_log, quiet=True)
        except Exception as exc:  # a Prefect API blip: the next sweep tries again
            _resident_log.warning("sweep failed: %s", exc)


async def _mark_crashed(client: Any, flow_run_id: str, reason: str, logger: Any) -> None:
    """A run that died without a word (kill -9) would show RUNNING forever; say it crashed."""
    from prefect.states import Crashed

    try:
        run = await client.read_flow_run(uuid.UUID(flow_run_id))
        if run.state and not run.state.is_final():
            await client.set_flow_run_state(
                run.id, Crashed(message=f"found dead by the sweeper: {reason}"), force=True
            )
    except Exception as exc:  # no such run (a local one), or Prefect refused: the cleanup matters more
        logger.debug("could not mark run %s crashed: %s", flow_run_id, exc)


class RoomLeftoversError(RuntimeError):
    """A dead run's changes to the room could not be undone; the campaign does not start."""


async def clear_orphans_of_room(room: str, own_run_id: str, logger: Any) -> None:
    """Before a campaign reads a borrowed room's "before" state: undo what dead runs left in it.

    Called while holding the room's lock. Any other run's ledger for this room belongs to a run
    that lost the lock, so it is finished if the run ended or missed its heartbeats for a
    lease (`room_lock.LEASE_SECONDS`): its legs are hung up and the room's *original*
    properties restored, so the leaked state is never taken for the original. If that cannot
    be finished, the campaign refuses to start rather than record a leak as "before".

    Example:
        ```python
        await clear_orphans_of_room("boardroom", str(flow_run_id), logger)
        ```
    """
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        ledgers = await read_ledgers(client)
        for ledger, written in ledgers:
            if ledger.room != room or ledger.created_room or ledger.flow_run_id == own_run_id:
                continue
            reason = await orphaned_because(ledger, written, client, LEASE_SECONDS)
            if reason is None:
                reason = "it holds no lock on the room any more"
            else:
                await _mark_crashed(client, ledger.flow_run_id, reason, logger)
            logger.warning(
                "room %s still has changes of run %s (%s); undoing them first",
                room,
                ledger.flow_run_id,
                reason,
            )
            pending = await sweep_one(ledger, logger)
            if pending:
                raise RoomLeftoversError(
                    f"room {room} still has changes of run {ledger.flow_run_id} that could not be "
                    f"undone ({'; '.join(pending)}); the sweeper keeps trying: run `daily-sip sweep` later"
                )
