"""Base classes: tolerant when reading Daily's answers, strict when writing requests."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class DailyResponse(BaseModel):
    """Something Daily sent us. Unknown fields are kept: Daily adds fields without notice."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class DailyRequest(BaseModel):
    """Something we send Daily. Unknown fields are refused so a typo fails here, not at Daily."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def to_body(self) -> dict[str, Any]:
        """The JSON body, with Daily's field names.

        Only fields the caller set are sent (an explicit ``None`` is kept, because
        ``"sip": null`` is how Daily turns SIP off).
        """
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)
