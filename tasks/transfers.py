"""Prefect tasks that move a live SIP leg: Daily-bridged transfer and SIP REFER."""

from __future__ import annotations

from ._shared import client_for
from ._sync import daily_task, sync_twin
from .credentials import DailyCredentials
from .models import Acknowledged, SipCallTransfer, SipRefer
from .ratelimit import DEFAULT
from .retries import paced_call


@daily_task("daily-sip-call-transfer")
async def asip_call_transfer(
    room: str,
    session_id: str,
    to_end_point: str,
    credentials: DailyCredentials | None = None,
    *,
    caller_id: str | None = None,
    extension: str | None = None,
    wait_before_extension_dial_sec: int | None = None,
) -> Acknowledged:
    """Bridge a leg to another SIP URI or number while Daily keeps the call (``sipCallTransfer``).

    The leg leaves the room (``participant.left``, ``dialout.stopped`` / ``dialin.stopped``) and
    ``calltransfer.*`` webhooks follow. ``caller_id`` (the id of a purchased number),
    ``extension`` and ``wait_before_extension_dial_sec`` apply to a phone-number target
    (https://docs.daily.co/reference/rest-api/rooms/callTransfer/sip-call-transfer).

    Example:
        ```python
        await asip_call_transfer("standup", leg.session_id, "+14155550100",
                                 extension="1234#", wait_before_extension_dial_sec=2,
                                 credentials=creds)
        ```
    """
    body = SipCallTransfer(
        session_id=session_id,
        to_end_point=to_end_point,
        caller_id=caller_id,
        extension=extension,
        wait_before_extension_dial_sec=wait_before_extension_dial_sec,
    )
    return await paced_call(DEFAULT, lambda: client_for(credentials).sip_call_transfer(room, body))


@daily_task("daily-sip-refer")
async def asip_refer(
    room: str, session_id: str, to_end_point: str, credentials: DailyCredentials | None = None
) -> Acknowledged:
    """Hand a leg off with a SIP REFER (both ends outside Daily's SIP network).

    Example:
        ```python
        await asip_refer("standup", leg.session_id, "sip:desk@pbx.example.com", credentials=creds)
        ```
    """
    body = SipRefer(session_id=session_id, to_end_point=to_end_point)
    return await paced_call(DEFAULT, lambda: client_for(credentials).sip_refer(room, body))


sip_call_transfer = sync_twin(asip_call_transfer)
sip_refer = sync_twin(asip_refer)
