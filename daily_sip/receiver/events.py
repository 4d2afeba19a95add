"""The Daily-webhook -> Prefect-event contract shared by the receiver and the campaign flow.

Every Daily webhook delivery (envelope ``{"version", "type", "id", "payload", "event_ts"}``,
see https://docs.daily.co/reference/rest-api/webhooks) becomes exactly one Prefect event:

* ``event``: ``daily.<daily type>``, e.g. ``daily.dialout.answered``. Unknown types are emitted
  too, named the same way.
* ``resource``: the room, ``{"prefect.resource.id": "daily.room.<room>",
  "prefect.resource.name": <room>, "daily.room": <room>, "daily.domain_id": <domain_id>}``
  (``daily.domain_id`` only when the payload has one). Events without a room (not expected for
  telephony, possible for other families) fall back to ``daily.domain.<domain_id>``, or to
  ``daily.webhook`` when there is no domain id either.
* ``related``: ``daily.dialout.<session_id>`` with role ``dialout-session`` when the payload has a
  ``session_id`` (``daily.dialin.<session_id>`` / ``dialin-session`` for ``dialin.*`` types), and
  ``daily.user.<user_id>`` with role ``dial-user`` when it has a ``user_id``.
* ``payload``: ``{"daily_event_id", "daily_type", "version", "event_ts", "daily": <the Daily payload
  exactly as received>, "proof": {"timestamp", "signature", "body_b64"}}``. ``proof`` carries
  Daily's ``X-Webhook-Timestamp`` and ``X-Webhook-Signature`` headers and the raw body (base64),
  so a consumer holding the webhook secret can re-verify that Daily sent it: anyone who can
  write to the Prefect API can post an event that *looks* like ours, but cannot sign it.
* ``id``: ``uuid5(DAILY_EVENT_NAMESPACE, <Daily envelope id>)``: a redelivered Daily event always
  maps to the same Prefect event id, so duplicates also collapse downstream (the Prefect server
  de-duplicates by event id).
* ``occurred``: the payload ``timestamp`` (string or number, unix seconds; milliseconds tolerated;
  ISO 8601 tolerated) when parsable, else the envelope ``event_ts``, else now.

The names (event names, resource ids, roles, the event id namespace) are Daily's shared
vocabulary and live in `daily_sip.tasks.events`, where the flows read them too; this module
re-exports them with the conversion. It imports nothing heavy at import time (Prefect is
imported inside `to_prefect_event`), so a CLI can import the constants cheaply.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from daily_sip.tasks.events import (
    DAILY_EVENT_NAMESPACE,
    DIAL_USER_ROLE,
    DIALIN_CONNECTED,
    DIALIN_ERROR,
    DIALIN_READY,
    DIALIN_SESSION_ROLE,
    DIALIN_STOPPED,
    DIALIN_WARNING,
    DIALOUT_ANSWERED,
    DIALOUT_CONNECTED,
    DIALOUT_ERROR,
    DIALOUT_EVENTS,
    DIALOUT_SESSION_ROLE,
    DIALOUT_STOPPED,
    DIALOUT_TERMINAL_EVENTS,
    DIALOUT_WARNING,
    EVENT_PREFIX,
    MEETING_ENDED,
    MEETING_STARTED,
    PARTICIPANT_JOINED,
    PARTICIPANT_LEFT,
    dialin_resource_id,
    dialout_resource_id,
    event_name,
    prefect_event_id,
    room_resource_id,
    user_resource_id,
)
from daily_sip.tasks.signature import proof_of

if TYPE_CHECKING:
    from prefect.events import Event

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
    "dialin_resource_id",
    "dialout_resource_id",
    "event_name",
    "parse_timestamp",
    "prefect_event_id",
    "proof_of",
    "room_resource_id",
    "to_prefect_event",
    "user_resource_id",
]


def _label(value: Any) -> str | None:
    """A resource label value: non-empty string, or None to leave the label out."""
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value)
    return text or None


def parse_timestamp(value: Any) -> datetime | None:
    """Unix seconds (int/float/numeric string; values > 1e11 are taken as milliseconds) or an
    ISO 8601 string -> aware UTC datetime. Anything else -> None."""
    if value is None or isinstance(value, bool):
        return None
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if number is None or not math.isfinite(number) or number <= 0:
        return None
    if number > 1e11:
        number /= 1000.0
    try:
        return datetime.fromtimestamp(number, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _occurred(payload: Mapping[str, Any], envelope: Mapping[str, Any]) -> datetime:
    return (
        parse_timestamp(payload.get("timestamp"))
        or parse_timestamp(envelope.get("event_ts"))
        or datetime.now(UTC)
    )


def _resource(payload: Mapping[str, Any]) -> dict[str, str]:
    room = _label(payload.get("room")) or _label(payload.get("room_name"))
    domain_id = _label(payload.get("domain_id"))
    if room:
        resource = {
            "prefect.resource.id": room_resource_id(room),
            "prefect.resource.name": room,
            "daily.room": room,
        }
    elif domain_id:
        resource = {"prefect.resource.id": f"daily.domain.{domain_id}", "prefect.resource.name": domain_id}
    else:
        resource = {"prefect.resource.id": "daily.webhook"}
    if domain_id:
        resource["daily.domain_id"] = domain_id
    return resource


def _related(daily_type: str, payload: Mapping[str, Any]) -> list[dict[str, str]]:
    related: list[dict[str, str]] = []
    session_id = _label(payload.get("session_id"))
    if session_id:
        if daily_type.startswith("dialin."):
            related.append(
                {
                    "prefect.resource.id": dialin_resource_id(session_id),
                    "prefect.resource.role": DIALIN_SESSION_ROLE,
                }
            )
        else:
            related.append(
                {
                    "prefect.resource.id": dialout_resource_id(session_id),
                    "prefect.resource.role": DIALOUT_SESSION_ROLE,
                }
            )
    user_id = _label(payload.get("user_id"))
    if user_id:
        related.append(
            {"prefect.resource.id": user_resource_id(user_id), "prefect.resource.role": DIAL_USER_ROLE}
        )
    return related


def to_prefect_event(envelope: Mapping[str, Any], proof: Mapping[str, Any] | None = None) -> Event:
    """Convert one Daily webhook envelope (already JSON-decoded) to a Prefect `Event`.

    Raises ValueError when the envelope has no usable ``type`` or ``id``. Unknown fields and
    unknown event types are tolerated; a ``payload`` that is not an object is carried as is
    under ``payload["daily"]`` (with the fallback resource).
    """
    from prefect.events import Event

    if not isinstance(envelope, Mapping):
        raise ValueError("Daily webhook envelope must be a JSON object")
    daily_type = envelope.get("type")
    daily_id = envelope.get("id")
    if not isinstance(daily_type, str) or not daily_type:
        raise ValueError("Daily webhook envelope has no 'type'")
    if daily_id is None or isinstance(daily_id, dict | list | bool) or str(daily_id) == "":
        raise ValueError("Daily webhook envelope has no 'id'")
    raw_payload = envelope.get("payload")
    payload: Mapping[str, Any] = raw_payload if isinstance(raw_payload, Mapping) else {}

    return Event(
        id=prefect_event_id(str(daily_id)),
        event=event_name(daily_type),
        occurred=_occurred(payload, envelope),
        resource=_resource(payload),
        related=_related(daily_type, payload),
        payload={
            "daily_event_id": str(daily_id),
            "daily_type": daily_type,
            "version": envelope.get("version"),
            "event_ts": envelope.get("event_ts"),
            "daily": raw_payload,
            **({"proof": dict(proof)} if proof is not None else {}),
        },
    )
