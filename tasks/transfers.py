"""Prefect tasks that move a live SIP leg: Daily-bridged transfer and SIP REFER."""

from __future__ import annotations

from prefect import task

from ._shared import client_for
from .credentials import DailyCredentials
from .models import Acknowledged, SipCallTransfer, SipRefer
from .ratelimit import DEFAULT
from .retries import RETRY_POLICY, paced_call


@task(name="daily-sip-call-transfer", **RETRY_POLICY)
async def sip_call_transfer(
    room: str,
    session_id: str,
    to_end_point: str,
    credentials: DailyCredentials | None = None,
) -> Acknowledged:
    """Bridge a leg to another SIP URI or number while Daily keeps the call (``sipCallTransfer``).

    Example:
        ```python
        await sip_call_transfer("standup", leg.session_id, "sip:ops@pbx.example.com",
                                credentials=creds)
        ```
    """
    body = SipCallTransfer(session_id=session_id, to_end_point=to_end_point)
    return await paced_call(DEFAULT, lambda: client_for(credentials).sip_call_transfer(room, body))


@task(name="daily-sip-refer", **RETRY_POLICY)
async def sip_refer(
    room: str, session_id: str, to_end_point: str, credentials: DailyCredentials | None = None
) -> Acknowledged:
    """Hand a leg off with a SIP REFER (both ends outside Daily's SIP network).

    Example:
        ```python
        await sip_refer("standup", leg.session_id, "sip:desk@pbx.example.com", credentials=creds)
        ```
    """
    body = SipRefer(session_id=session_id, to_end_point=to_end_point)
    return await paced_call(DEFAULT, lambda: client_for(credentials).sip_refer(room, body))
