"""Provisioning: the room the campaign dials from, with SIP dial-in and REST dial-out allowed.

A room the campaign creates is deleted afterwards; a borrowed room gets its properties back. What
to undo is written to the cleanup ledger (`cleanup.Ledger`) *before* the room is touched.
Room properties: https://docs.daily.co/reference/rest-api/rooms/config
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from daily_sip.flows.campaign.model import Campaign
from daily_sip.flows.cleanup.ledger import Ledger, save_ledger
from daily_sip.flows.sweeper import clear_orphans_of_room
from daily_sip.tasks import DailyCredentials
from daily_sip.tasks.retries import inline
from daily_sip.tasks.rooms import acreate_room, aget_room, aupdate_room

# A created room expires (and ejects everyone) this long after the campaign's deadline.
CREATED_ROOM_EXTRA_SECONDS = 3600

# A run stopped while its room is being created waits this long for the create's answer.
CREATE_ANSWER_WAIT_SECONDS = 2.0

# Seconds after the campaign deadline a leg may still be up: the cleanup's hang-ups.
IDLE_MARGIN_SECONDS = 120


def idle_timeout_for(campaign: Campaign) -> int:
    """``dialout_config.max_idle_timeout_sec`` for a campaign room.

    A REST-only campaign has no browser participant, so every leg is "alone" in Daily's sense;
    under Daily's documented default of 0 a bridge could be hung up by Daily itself right after
    it answered (and be reported as "far end hung up"). The flow hangs legs up itself, so the
    timeout only has to outlast the run (deadline plus cleanup); keeping it bounded means a leg
    left behind by a run that was killed outright still ends on its own.
    https://docs.daily.co/reference/rest-api/rooms/config

    Example:
        >>> idle_timeout_for(Campaign(targets=[{"sip_uri": "sip:1@b.example.com"}], deadline_seconds=600))
        720
    """
    return int(campaign.deadline_seconds) + IDLE_MARGIN_SECONDS


async def provision(campaign: Campaign, creds: DailyCredentials, ledger: Ledger) -> Any:
    """Create the room (or borrow one), with SIP dial-in and REST dial-out allowed."""
    props: dict[str, Any] = {
        "enable_dialout": True,
        "dialout_config": {
            "allow_room_start": True,
            "max_idle_timeout_sec": idle_timeout_for(campaign),
        },
    }
    if campaign.dial_in.enabled:
        props["sip"] = {
            "sip_mode": "dial-in",
            "display_name": campaign.dial_in.display_name,
            "num_endpoints": campaign.dial_in.num_endpoints,
            "video": campaign.video,
            "codecs": {
                "audio": campaign.audio_codecs,
                **({"video": campaign.video_codecs} if campaign.video else {}),
            },
        }
    if campaign.room is None:
        # Expiry is the safety net for a run killed so hard that no cleanup (and no sweeper) ran:
        # nobody joins after `exp`, and `eject_at_room_exp` ends the calls already up then, so
        # nothing outlives it (https://docs.daily.co/reference/rest-api/rooms/config#exp).
        props["exp"] = int(time.time() + campaign.deadline_seconds + CREATED_ROOM_EXTRA_SECONDS)
        props["eject_at_room_exp"] = True
        ledger.created_room = True
        ledger.restore = {"sip": None} if campaign.dial_in.enabled else {}
        await save_ledger(ledger)
        create = inline(acreate_room, ledger.room, properties=props, credentials=creds)
        creating = asyncio.ensure_future(create)
        try:
            room = await asyncio.shield(creating)
        except asyncio.CancelledError:
            # Stopped while the create request may be on its way: its answer, not a guess, tells
            # the cleanup whether there is a room to delete (a guess costs it CREATE_SETTLE_SECONDS).
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(creating), CREATE_ANSWER_WAIT_SECONDS)
            if creating.done() and not creating.cancelled() and creating.exception() is None:
                ledger.room_confirmed = True
            else:
                creating.cancel()
            raise
        ledger.room_confirmed = True
        return room
    # A dead run's leftovers must never be taken for the room's original state.
    await clear_orphans_of_room(campaign.room, ledger.flow_run_id, logging.getLogger("daily_sip.provision"))
    before = await inline(aget_room, campaign.room, credentials=creds)
    known_sip = (
        "sip_mode",
        "display_name",
        "video",
        "num_endpoints",
        "codecs",
        "provider",
        "force_digit_only_username",
        "dialin_config",
    )
    prior_sip = before.config.sip
    # Exactly what was there: a property the room did not have is put back as null, i.e. removed
    # (`cleanup.actions` falls back to Daily's defaults if Daily refuses that null).
    ledger.restore = {
        "enable_dialout": before.config.enable_dialout,
        "dialout_config": before.config.dialout_config,
    }
    if campaign.dial_in.enabled:
        ledger.restore["sip"] = {k: v for k, v in prior_sip.items() if k in known_sip} if prior_sip else None
    await save_ledger(ledger)
    room = await inline(aupdate_room, campaign.room, properties=props, credentials=creds)
    ledger.room_confirmed = True
    return room


class NotReadyError(RuntimeError):
    """The room did not list its SIP dial-in endpoints in time (the campaign stops, nothing dialled)."""


async def await_ready(campaign: Campaign, creds: DailyCredentials, room: str) -> list[str]:
    """The room's config must list every dial-in endpoint before anyone is dialled."""
    if not campaign.dial_in.enabled:
        return []
    deadline = time.monotonic() + campaign.ready_timeout_seconds
    while True:
        info = await inline(aget_room, room, credentials=creds)
        endpoints = info.config.sip_uri.all_endpoints if info.config.sip_uri else []
        if len(endpoints) >= campaign.dial_in.num_endpoints:
            return endpoints
        if time.monotonic() > deadline:
            raise NotReadyError(
                f"room {room} did not list {campaign.dial_in.num_endpoints} SIP endpoint(s) within "
                f"{campaign.ready_timeout_seconds:.0f} s (has {len(endpoints)}); check the SIP settings"
            )
        await asyncio.sleep(1.0)
