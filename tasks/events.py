"""Daily's webhook event types, and the Prefect events the receiver turns them into.

Two vocabularies, one per side of the webhook receiver:

* `DailyType`: Daily's own names (``"dialout.stopped"``), the ``type`` of a webhook envelope
  (https://docs.daily.co/reference/rest-api/webhooks). The stand-in sends them, the webhook tasks
  subscribe to them, and the campaign flow compares a verified envelope's ``type`` with them.
* The module-level names: the Prefect side of the contract (`daily_sip.receiver.events`). Each
  Daily event becomes the Prefect event ``daily.<type>`` (`event_name`; ``DIALOUT_STOPPED`` is
  ``"daily.dialout.stopped"``) on the room's resource (`room_resource_id`), with the leg's session
  and user as related resources. Triggers, filters and the flow's event reads use these.

Standard library only: the receiver, the pacer and the stand-in import it without Prefect.

Example:
    >>> DailyType.DIALOUT_STOPPED in DIALOUT_LEG_ENDED
    True
    >>> event_name(DailyType.DIALOUT_ANSWERED) == DIALOUT_ANSWERED == "daily.dialout.answered"
    True
    >>> room_resource_id("standup")
    'daily.room.standup'
"""

from __future__ import annotations

import uuid
from typing import Final

__all__ = [
    "DAILY_EVENT_NAMESPACE",
    "DIALIN_CONNECTED",
    "DIALIN_ERROR",
    "DIALIN_READY",
    "DIALIN_SESSION_ROLE",
    "DIALIN_STOPPED",
    "DIALIN_WARNING",
    "DIALOUT_ANSWERED",
    "DIALOUT_CONNECTED",
    "DIALOUT_ERROR",
    "DIALOUT_EVENTS",
    "DIALOUT_LEG_ENDED",
    "DIALOUT_SESSION_ROLE",
    "DIALOUT_STOPPED",
    "DIALOUT_TERMINAL_EVENTS",
    "DIALOUT_WARNING",
    "DIAL_USER_ROLE",
    "EVENT_PREFIX",
    "MEETING_ENDED",
    "MEETING_STARTED",
    "PARTICIPANT_JOINED",
    "PARTICIPANT_LEFT",
    "DailyType",
    "dialin_resource_id",
    "dialout_resource_id",
    "event_name",
    "prefect_event_id",
    "room_resource_id",
    "user_resource_id",
]


class DailyType:
    """Daily's webhook event types, as Daily names them (plain strings, not an enum)."""

    DIALOUT_CONNECTED: Final = "dialout.connected"
    DIALOUT_ANSWERED: Final = "dialout.answered"
    DIALOUT_STOPPED: Final = "dialout.stopped"
    DIALOUT_WARNING: Final = "dialout.warning"
    DIALOUT_ERROR: Final = "dialout.error"

    DIALIN_READY: Final = "dialin.ready"
    DIALIN_CONNECTED: Final = "dialin.connected"
    DIALIN_STOPPED: Final = "dialin.stopped"
    DIALIN_WARNING: Final = "dialin.warning"
    DIALIN_ERROR: Final = "dialin.error"

    MEETING_STARTED: Final = "meeting.started"
    MEETING_ENDED: Final = "meeting.ended"
    PARTICIPANT_JOINED: Final = "participant.joined"
    PARTICIPANT_LEFT: Final = "participant.left"


# A dial-out leg is over after one of these (a warning is not fatal).
DIALOUT_LEG_ENDED: Final = (DailyType.DIALOUT_STOPPED, DailyType.DIALOUT_ERROR)

# -- the Prefect side -------------------------------------------------------------------------

EVENT_PREFIX: Final = "daily."

# Fixed forever: changing it would change every event id (and break de-duplication).
# = uuid5(NAMESPACE_URL, "https://docs.daily.co/reference/rest-api/webhooks#daily-sip-flows")
DAILY_EVENT_NAMESPACE: Final = uuid.UUID("02e31cc9-6c9a-58da-8001-77aaf8454ff5")

DIALOUT_SESSION_ROLE: Final = "dialout-session"
DIALIN_SESSION_ROLE: Final = "dialin-session"
DIAL_USER_ROLE: Final = "dial-user"


def event_name(daily_type: str) -> str:
    """``"dialout.answered"`` -> ``"daily.dialout.answered"``."""
    return f"{EVENT_PREFIX}{daily_type}"


DIALOUT_CONNECTED: Final = event_name(DailyType.DIALOUT_CONNECTED)
DIALOUT_ANSWERED: Final = event_name(DailyType.DIALOUT_ANSWERED)
DIALOUT_STOPPED: Final = event_name(DailyType.DIALOUT_STOPPED)
DIALOUT_WARNING: Final = event_name(DailyType.DIALOUT_WARNING)
DIALOUT_ERROR: Final = event_name(DailyType.DIALOUT_ERROR)
DIALOUT_EVENTS: Final = (DIALOUT_CONNECTED, DIALOUT_ANSWERED, DIALOUT_STOPPED, DIALOUT_WARNING, DIALOUT_ERROR)
# `DIALOUT_LEG_ENDED` as Prefect event names.
DIALOUT_TERMINAL_EVENTS: Final = tuple(event_name(t) for t in DIALOUT_LEG_ENDED)

DIALIN_READY: Final = event_name(DailyType.DIALIN_READY)
DIALIN_CONNECTED: Final = event_name(DailyType.DIALIN_CONNECTED)
DIALIN_STOPPED: Final = event_name(DailyType.DIALIN_STOPPED)
DIALIN_WARNING: Final = event_name(DailyType.DIALIN_WARNING)
DIALIN_ERROR: Final = event_name(DailyType.DIALIN_ERROR)

MEETING_STARTED: Final = event_name(DailyType.MEETING_STARTED)
MEETING_ENDED: Final = event_name(DailyType.MEETING_ENDED)
PARTICIPANT_JOINED: Final = event_name(DailyType.PARTICIPANT_JOINED)
PARTICIPANT_LEFT: Final = event_name(DailyType.PARTICIPANT_LEFT)


def room_resource_id(room: str) -> str:
    """The Prefect resource a room's events are on; ``room_resource_id("")`` is their prefix."""
    return f"daily.room.{room}"


def dialout_resource_id(session_id: str) -> str:
    return f"daily.dialout.{session_id}"


def dialin_resource_id(session_id: str) -> str:
    return f"daily.dialin.{session_id}"


def user_resource_id(user_id: str) -> str:
    return f"daily.user.{user_id}"


def prefect_event_id(daily_event_id: str) -> uuid.UUID:
    """The Prefect event id for a Daily envelope id (stable across redeliveries)."""
    return uuid.uuid5(DAILY_EVENT_NAMESPACE, str(daily_event_id))
