"""Base classes: tolerant when reading Daily's answers, strict when writing requests."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator


class DailyResponse(BaseModel):
    """Something Daily sent us. Unknown fields are kept: Daily adds fields without notice."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class DailyRequest(BaseModel):
    """Something we send Daily. Unknown fields are refused so a typo fails here, not at Daily."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    #: Fields Daily requires whose defaults must be sent even when the caller left them out.
    #: Marked as "set" after validation, so ``exclude_unset`` keeps them at every nesting level
    #: (a nested model is dumped by its parent, not by its own ``to_body``).
    always_sent: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _mark_required_defaults(self):
        self.__pydantic_fields_set__.update(self.always_sent)
        return self

    def to_body(self) -> dict[str, Any]:
        """The JSON body, with Daily's field names.

        Only fields with a value are sent, except an explicit null of `NULL_MEANS_OFF` (``"sip":
        null`` is how Daily turns SIP off).
        """
        return _drop_nulls(self.model_dump(mode="json", by_alias=True, exclude_unset=True))


# Properties whose null is a command to Daily rather than "not given": ``sip: null`` turns SIP
# off (https://docs.daily.co/guides/products/dial-in-dial-out/sip); for the dial-out properties
# null removes what a campaign set on a borrowed room that did not have them, so the room's
# config lists again only what it listed before (it "includes only configuration parameters that
# differ from room configuration defaults", https://docs.daily.co/reference/rest-api/rooms/create-room).
NULL_MEANS_OFF = frozenset({"sip", "enable_dialout", "dialout_config"})


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None or k in NULL_MEANS_OFF}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value
