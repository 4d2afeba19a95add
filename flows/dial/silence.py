"""When a leg was started but no webhook event at all came back: find out what we can, say why.

Silence is not "no answer". A bridge that rings usually produces `dialout.connected`; nothing at
all from any leg means events are not reaching the flow (the Daily webhook is not pointed at the
receiver, the receiver cannot reach Prefect, or it lacks the secret). Daily's presence is the
only other view of a call, and it is near-real-time only: Daily asks to poll it at most every
15 s and a join can take 10-25 s to show (https://docs.daily.co/reference/rest-api/presence), so
one cached read serves every leg that times out in the same 15 s.
"""

from __future__ import annotations

import asyncio
import time

from daily_sip.flows.campaign.targets import Outcome
from daily_sip.tasks import DailyCredentials, DailyError
from daily_sip.tasks.presence import aget_room_presence
from daily_sip.tasks.retries import inline

# Daily: poll presence at most every 15 s.
PRESENCE_MIN_INTERVAL_SECONDS = 15.0
NO_EVENTS_ADVICE = (
    "no webhook events are arriving — is the Daily webhook pointed at the receiver "
    "(daily-sip run --webhook-url ..., or the deployment's webhook_url), and can the receiver "
    "reach the Prefect API?"
)


class SilenceCheck:
    """Status and detail for a leg that heard nothing before its ring deadline.

    Example:
        ```python
        status, detail = await SilenceCheck(creds, "standup").verdict(session_id, router, 30)
        ```
    """

    def __init__(self, creds: DailyCredentials, room: str) -> None:
        self.creds = creds
        self.room = room
        self._lock = asyncio.Lock()
        self._read_at = 0.0
        self._present: set[str] | None = None

    async def _presence(self) -> set[str] | None:
        async with self._lock:
            if self._present is None or time.monotonic() - self._read_at >= PRESENCE_MIN_INTERVAL_SECONDS:
                try:
                    found = await inline(aget_room_presence, self.room, credentials=self.creds)
                    self._present = {p.id for p in found.data} | {p.user_id for p in found.data if p.user_id}
                except DailyError:
                    self._present = None
                self._read_at = time.monotonic()
            return self._present

    async def verdict(
        self, session_id: str, user_id: str | None, accepted_events: int, waited: float
    ) -> tuple[Outcome, str]:
        """("no_events", ...) when the whole run heard nothing; ("unknown", ...) when only this
        leg did. The detail says what presence showed, with its lag in mind."""
        present = await self._presence()
        if present is None:
            seen = "presence could not be read"
        elif session_id in present or (user_id and user_id in present):
            seen = "Daily's presence lists the call in the room, so it is up"
        else:
            seen = "Daily's presence does not list it (presence can lag 10-25 s)"
        if accepted_events == 0:
            return "no_events", f"no webhook event within {waited:.0f} s; {seen}. {NO_EVENTS_ADVICE}"
        return "unknown", f"no webhook event for this leg within {waited:.0f} s; {seen}"
