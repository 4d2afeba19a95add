"""Prefect tasks for dial-out legs: start, stop, send DTMF."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prefect.logging import get_run_logger

from ._shared import client_for
from ._sync import daily_task, sync_twin
from .credentials import DailyCredentials
from .errors import DailyError, DailyNotFoundError
from .models import Acknowledged, DialOutStarted, SendDtmf, StartDialOut
from .ratelimit import DEFAULT, DIALOUT_START
from .retries import paced_call

# Daily's presence is "near-real-time" and asks for polls at most every 15 s; joins were seen to
# show up 10-25 s late (https://docs.daily.co/reference/rest-api/presence). A leg whose start
# answer was lost is looked for that long before the start may be tried again.
PRESENCE_SETTLE_SECONDS = 30.0
PRESENCE_POLL_SECONDS = 15.0


@daily_task("daily-start-dial-out")
async def astart_dial_out(
    room: str,
    dial_out: StartDialOut | dict[str, Any],
    credentials: DailyCredentials | None = None,
    presence_settle_seconds: float = PRESENCE_SETTLE_SECONDS,
) -> DialOutStarted:
    """Call a SIP URI (or phone number) from the room; returns the leg's ``sessionId``.

    Paced at Daily's call-start class (~1/s, 5 per 5 s) across every process that uses the same
    shared pacer (``DAILY_PACER_URL``; see `daily_sip.tasks.ratelimit`). The outcome arrives
    later as ``dialout.*`` webhooks.

    When an attempt fails in a way that may have reached Daily (5xx, read timeout) and the
    request carries a ``userId``, the room's presence is checked before the retry: a leg with
    that ``userId`` already there is returned (``recovered=True``) instead of calling twice.
    Presence lags, so it is read until ``presence_settle_seconds`` after the start (every 15 s,
    Daily's polling limit) before the failure is passed on to the retry.

    Example:
        ```python
        leg = await astart_dial_out("standup", {"sipUri": "sip:123@bridge.example.com",
                                               "displayName": "Webex bridge", "userId": "t-1"},
                                   credentials=creds)
        print(leg.session_id)
        ```
    """
    request = dial_out if isinstance(dial_out, StartDialOut) else StartDialOut.model_validate(dial_out)
    client = client_for(credentials)
    sent_at = time.monotonic()
    try:
        return await paced_call(DIALOUT_START, lambda: client.start_dial_out(room, request))
    except DailyError as exc:
        if not (getattr(exc, "maybe_applied", False) and request.user_id):
            raise
        poll = min(PRESENCE_POLL_SECONDS, max(presence_settle_seconds / 2, 0.5))
        # A poll, not a retry (the start is never sent again here): presence is read until the
        # leg shows up or has had time to; then the failure goes to the task's own retries.
        while True:
            try:
                presence = await paced_call(
                    DEFAULT, lambda: client.get_room_presence(room, user_id=request.user_id)
                )
            except DailyError:
                raise exc from None
            for person in presence.data:
                if person.user_id == request.user_id:
                    get_run_logger().warning(
                        "dial-out start answered %s but leg %s is up; not dialing again", exc, person.id
                    )
                    return DialOutStarted(ok=True, session_id=person.id, recovered=True)
            left = presence_settle_seconds - (time.monotonic() - sent_at)
            if left <= 0:
                raise
            await asyncio.sleep(min(poll, left))


@daily_task("daily-stop-dial-out")
async def astop_dial_out(
    room: str, session_id: str, credentials: DailyCredentials | None = None
) -> Acknowledged:
    """Hang up a dial-out leg (``dialOut/stop``); Daily then sends ``dialout.stopped``.

    A leg that already ended is not an error: the result then has ``already_stopped=True``.
    Daily answers 404 both when the leg is gone ("no dialout to stop", "room is not hosting a
    call": either way nothing is running) and when the room does not exist; the two are told
    apart by asking for the room, not by the wording of Daily's ``info``, which may change
    (https://docs.daily.co/reference/rest-api). An unknown room still raises.

    Example:
        ```python
        await astop_dial_out("standup", leg.session_id, credentials=creds)
        ```
    """
    client = client_for(credentials)
    try:
        return await paced_call(DEFAULT, lambda: client.stop_dial_out(room, session_id))
    except DailyNotFoundError as exc:
        try:
            await paced_call(DEFAULT, lambda: client.get_room(room))
        except DailyNotFoundError:
            raise exc from None
        return Acknowledged(ok=True, already_stopped=True)


@daily_task("daily-send-dtmf")
async def asend_dtmf(
    room: str,
    session_id: str,
    tones: str,
    digit_duration_ms: int | None = None,
    credentials: DailyCredentials | None = None,
) -> Acknowledged:
    """Send DTMF tones (``0-9 A-D * #``, at most 20) into an answered dial-out leg.

    Example:
        ```python
        await asend_dtmf("standup", leg.session_id, "123456#", credentials=creds)
        ```
    """
    body = SendDtmf(session_id=session_id, tones=tones, digit_duration_ms=digit_duration_ms)
    return await paced_call(DEFAULT, lambda: client_for(credentials).send_dtmf(room, body))


start_dial_out = sync_twin(astart_dial_out)
stop_dial_out = sync_twin(astop_dial_out)
send_dtmf = sync_twin(asend_dtmf)
