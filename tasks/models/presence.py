"""Who is in a room right now. Daily's sources disagree on field casing, so both are read."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from .base import DailyResponse


class Participant(DailyResponse):
    id: str
    room: str | None = None
    user_id: str | None = Field(default=None, validation_alias=AliasChoices("userId", "user_id"))
    user_name: str | None = Field(default=None, validation_alias=AliasChoices("userName", "user_name"))
    join_time: str | None = Field(default=None, validation_alias=AliasChoices("joinTime", "join_time"))
    duration: float | None = None


class RoomPresence(DailyResponse):
    total_count: int = 0
    data: list[Participant] = Field(default_factory=list)
