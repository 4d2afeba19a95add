"""Prefect tasks that turn a room's SIP dial-in on and off."""

from __future__ import annotations

from typing import Any

from ._shared import client_for
from ._sync import daily_task, sync_twin
from .credentials import DailyCredentials
from .models import Room, SipSettings
from .ratelimit import DEFAULT
from .retries import paced_call


@daily_task("daily-enable-sip")
async def aenable_sip(
    room: str,
    sip: SipSettings | dict[str, Any] | None = None,
    credentials: DailyCredentials | None = None,
    **more_properties: Any,
) -> Room:
    """Turn SIP dial-in on for a room; the answer carries ``config.sip_uri`` (one per endpoint).

    Extra room properties (``enable_dialout=True``, ``dialout_config={...}``) go in the same update.

    Example:
        ```python
        room = await aenable_sip("standup", {"display_name": "Bridge", "num_endpoints": 2},
                                credentials=creds, enable_dialout=True)
        print(room.config.sip_uri.all_endpoints)
        ```
    """
    settings = sip if sip is not None else SipSettings()
    return await paced_call(
        DEFAULT, lambda: client_for(credentials).enable_sip(room, settings, **more_properties)
    )


@daily_task("daily-disable-sip")
async def adisable_sip(room: str, credentials: DailyCredentials | None = None) -> Room:
    """Turn SIP dial-in off (``"sip": null``); ``config.sip_uri`` disappears.

    Example:
        ```python
        room = await adisable_sip("standup", credentials=creds)
        assert not room.sip_enabled
        ```
    """
    return await paced_call(DEFAULT, lambda: client_for(credentials).disable_sip(room))


enable_sip = sync_twin(aenable_sip)
disable_sip = sync_twin(adisable_sip)
