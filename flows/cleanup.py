"""Turning off what a campaign turned on, on every exit path.

The flow writes a small ledger (room, whether it created it, the properties it must restore)
to a Prefect Variable before touching anything. Its own ``finally`` cleans up and removes the
ledger; if the run is cancelled or crashes instead, the ``on_cancellation`` / ``on_crashed``
hook reads the ledger (possibly in the runner's process) and does the same.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, Field

from daily_sip.tasks import DailyCredentials, DailyError, DailyNotFoundError
from daily_sip.tasks.dialout import astop_dial_out
from daily_sip.tasks.presence import aget_room_presence
from daily_sip.tasks.rooms import adelete_room, aget_room, aupdate_room

logger = logging.getLogger("daily_sip.cleanup")


class Ledger(BaseModel):
    flow_run_id: str
    room: str
    user_prefix: str = Field(description="userId prefix of every leg this run started")
    created_room: bool = False
    delete_room: bool = True
    restore: dict[str, Any] = Field(default_factory=dict, description="room properties to put back")
    credentials_block: str | None = None

    @property
    def variable_name(self) -> str:
        return ledger_variable(self.flow_run_id)


def ledger_variable(flow_run_id: str) -> str:
    return f"daily_campaign_{str(flow_run_id).replace('-', '_')}"


async def save_ledger(ledger: Ledger) -> None:
    from prefect.variables import Variable

    await Variable.aset(ledger.variable_name, ledger.model_dump(mode="json"), overwrite=True)


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


async def clean_up(ledger: Ledger, creds: DailyCredentials, live_sessions: set[str]) -> list[str]:
    """Hang up this run's legs, then delete the room it created or restore the one it borrowed.

    Returns what was done, for the report. Each step is tried even if an earlier one failed.
    """
    actions: list[str] = []
    to_stop = set(live_sessions)
    try:
        presence = await aget_room_presence(ledger.room, credentials=creds)
        to_stop |= {p.id for p in presence.data if (p.user_id or "").startswith(ledger.user_prefix)}
    except DailyNotFoundError:
        to_stop.clear()  # no room, no legs
    except DailyError as exc:
        actions.append(f"could not read presence ({exc})")
    hung_up = 0
    for session_id in sorted(to_stop):
        try:
            await astop_dial_out(ledger.room, session_id, credentials=creds)
            hung_up += 1
        except DailyNotFoundError:
            pass  # it ended on its own in the meantime
        except DailyError as exc:
            actions.append(f"could not hang up {session_id} ({exc})")
    if hung_up:
        actions.append(f"hung up {hung_up} leg(s) still up")

    if ledger.created_room and ledger.delete_room:
        result = await adelete_room(ledger.room, credentials=creds)
        actions.append("room already gone" if result.already_gone else f"deleted room {ledger.room}")
        return actions
    if ledger.restore:
        try:
            await aupdate_room(ledger.room, properties=ledger.restore, credentials=creds)
            room = await aget_room(ledger.room, credentials=creds)
        except DailyNotFoundError:
            actions.append("room already gone")
            return actions
        if ledger.restore.get("sip", "absent") is None:
            state = "SIP off" if not room.sip_enabled else "SIP STILL ON"
        else:
            state = "SIP settings restored"
        restored = ", ".join(k for k in ledger.restore if k != "sip")
        actions.append(f"{state} in room {ledger.room}" + (f"; restored {restored}" if restored else ""))
    return actions


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
    actions = await clean_up(ledger, creds, set())
    logger.warning("run %s ended %s; cleanup: %s", flow_run.id, state.type, "; ".join(actions))
    await drop_ledger(str(flow_run.id))
