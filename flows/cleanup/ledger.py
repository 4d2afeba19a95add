"""The cleanup ledger: what a campaign must undo, saved in a Prefect Variable before it touches anything.

The flow writes a small ledger (room, whether it created it, the properties it must restore)
to a Prefect Variable ``daily_campaign_<run id>`` *before* touching anything. Its own cleanup,
the ``on_cancellation`` / ``on_crashed`` hook or the sweeper reads it and undoes what it lists;
the ledger is removed only when nothing is left (`settle_ledger`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, PrivateAttr

from daily_sip.tasks import DailyCredentials

if TYPE_CHECKING:
    from daily_sip.flows.cleanup.actions import CleanupResult

logger = logging.getLogger("daily_sip.cleanup")

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


class CrashReportSnapshot:
    """What the heartbeat saves with the ledger for a crash report: a new snapshot when a
    target's status changed, otherwise the one saved last until it is `REFRESH_SECONDS` old.

    Each save is a Prefect Variable write (~20 ms of server and database CPU), and the details of
    a campaign waiting its turn at the top of the hour change for minutes; a crash report names
    every status as of the last heartbeat and the times and details as of the last minute.

    >>> from types import SimpleNamespace
    >>> report = SimpleNamespace(model_dump=lambda **_: {"targets": [{"status": "pending"}]})
    >>> snap = CrashReportSnapshot(report)
    >>> snap() is snap()
    True
    """

    REFRESH_SECONDS = 60.0

    def __init__(self, report: Any) -> None:
        self.report = report
        self._last: dict[str, Any] | None = None
        self._statuses: list[tuple[Any, ...]] = []
        self._at = 0.0

    def __call__(self) -> dict[str, Any]:
        snapshot = report_snapshot(self.report)
        # A target's status changes only when its leg ends; its answer is a time that is set.
        statuses = [
            (t.get("status"), *(bool(t.get(k)) for k in ("answered_at", "joined_at", "stopped_at")))
            for t in snapshot.get("targets", [])
        ]
        fresh = time.monotonic() - self._at < self.REFRESH_SECONDS
        if self._last is not None and statuses == self._statuses and fresh:
            return self._last
        self._last, self._statuses, self._at = snapshot, statuses, time.monotonic()
        return snapshot


def _json_len(value: Any) -> int:
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


async def put_variable(name: str, value: Any, *, exists: bool, client: Any = None) -> None:
    """Write a Prefect Variable in one request: update it when this process wrote it before
    (``exists``), else create it. (``Variable.aset`` reads before it writes, and every heartbeat
    would pay for that on the Prefect server.) One dropped meanwhile is created again; one left
    by an earlier write whose answer was lost is updated. ``client``: an open Prefect client to
    use (a new one costs a TLS context); default: the run's.
    """
    from prefect.client.orchestration import get_client

    if client is None:
        async with get_client() as client:
            await _put_variable(client, name, value, exists)
    else:
        await _put_variable(client, name, value, exists)


async def _put_variable(client: Any, name: str, value: Any, exists: bool) -> None:
    import httpx
    from prefect.client.schemas.actions import VariableCreate, VariableUpdate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

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
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        variable = await client.read_variable_by_name(ledger_variable(flow_run_id))
    return Ledger.model_validate(variable.value) if variable and variable.value else None


async def drop_ledger(flow_run_id: str) -> None:
    from prefect.variables import Variable

    await Variable.aunset(ledger_variable(flow_run_id))


async def credentials_for(block_name: str | None) -> DailyCredentials:
    if block_name:
        return await DailyCredentials.aload(block_name)
    return DailyCredentials.from_env()


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
