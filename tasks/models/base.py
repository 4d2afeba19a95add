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

        Only fields with a value are sent, except an explicit ``"sip": null``, which is how
        Daily turns SIP off.
        """
        return _drop_nulls(self.model_dump(mode="json", by_alias=True, exclude_unset=True))


# Properties whose null is a command to Daily rather than "not given".
NULL_MEANS_OFF = frozenset({"sip"})


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _drop_nulls(v) for k, v in value.items() if v is not None or k in NULL_MEANS_OFF
        }
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value
