"""Turning off what a campaign turned on, on every exit path, even while Daily is failing.

Hang up the run's legs, then delete the room it created or restore the one it borrowed. Each
step is retried with backoff for up to `CLEANUP_BUDGET_SECONDS` of Daily errors (5xx, 429,
timeouts). Whatever is still undone then is written back to the ledger as ``pending`` for the
sweeper (`daily_sip.flows.sweeper`).
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Any

from pydantic import BaseModel, Field

from daily_sip.flows.cleanup.ledger import Ledger
from daily_sip.tasks import DailyCredentials, DailyError, DailyNotFoundError, DailyRequestError
from daily_sip.tasks.dialout import astop_dial_out
from daily_sip.tasks.presence import aget_room_presence
from daily_sip.tasks.retries import inline, persist
from daily_sip.tasks.rooms import adelete_room, aget_room, aupdate_room

# How long cleanup keeps retrying a step while Daily answers 5xx/429 or times out: well past a
# minute of errors, bounded so a run still ends. What is left then goes to the sweeper.
CLEANUP_BUDGET_SECONDS = 240.0
# A room whose create request went out but whose answer never came may appear a little later
# (the request was still in flight when the run stopped); cleanup watches for it this long.
CREATE_SETTLE_SECONDS = 6.0


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
            ack = await persist(
                partial(inline, astop_dial_out, ledger.room, session_id, credentials=creds),
                legs_deadline,
                f"hang up {session_id}",
            )
            # Presence lags (up to ~15 s, https://docs.daily.co/reference/rest-api/presence): a leg
            # that just ended may still be listed, and its stop finds it gone. Only real hang-ups count.
            if not getattr(ack, "already_stopped", False):
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


# Daily's documented defaults of the dial-out properties (https://docs.daily.co/reference/rest-api/rooms/config):
# what a borrowed room that had none of them gets back if Daily refuses to remove them (null).
DIALOUT_DEFAULTS: dict[str, Any] = {"enable_dialout": False, "dialout_config": {"allow_room_start": False}}


async def _restore_borrowed_room(
    ledger: Ledger, creds: DailyCredentials, deadline: float, out: CleanupResult
) -> None:
    def update(properties: dict[str, Any]) -> Any:
        return persist(
            lambda: inline(aupdate_room, ledger.room, properties=properties, credentials=creds),
            deadline,
            f"restore room {ledger.room}",
        )

    try:
        try:
            await update(ledger.restore)
        except DailyRequestError:
            # Daily refused to remove a property (null): put back the same behaviour, its defaults.
            removed = {
                k: DIALOUT_DEFAULTS[k]
                for k, v in ledger.restore.items()
                if v is None and k in DIALOUT_DEFAULTS
            }
            if not removed:
                raise
            await update({**ledger.restore, **removed})
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
