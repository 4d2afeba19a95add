"""Moving a live SIP leg elsewhere: Daily-bridged call transfer, and SIP REFER."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from .base import DailyRequest
from .validators import CallerId, Extension, check_sip_uri


def _check_endpoint(value: str) -> str:
    if value.startswith("sip:"):
        return check_sip_uri(value)
    if value.startswith("+") and value[1:].isdigit() and 7 <= len(value) <= 16:
        return value
    raise ValueError("must be a 'sip:' URI or an E.164 number such as '+14155550100'")


TransferEndpoint = Annotated[str, AfterValidator(_check_endpoint)]


class SipCallTransfer(DailyRequest):
    """Body of ``POST /rooms/:name/sipCallTransfer``: Daily keeps the leg and bridges a new one.

    Example:
        >>> SipCallTransfer(session_id="abc", to_end_point="sip:ops@pbx.example.com").to_body()
        {'sessionId': 'abc', 'toEndPoint': 'sip:ops@pbx.example.com'}
    """

    session_id: str = Field(alias="sessionId", min_length=1)
    to_end_point: TransferEndpoint = Field(alias="toEndPoint")
    caller_id: CallerId | None = Field(default=None, alias="callerId")
    extension: Extension | None = Field(default=None)
    wait_before_extension_dial_sec: int | None = Field(
        default=None, alias="waitBeforeExtensionDialSec", ge=0, le=60
    )


class SipRefer(DailyRequest):
    """Body of ``POST /rooms/:name/sipRefer``: hand the far end off with a SIP REFER."""

    session_id: str = Field(alias="sessionId", min_length=1)
    to_end_point: TransferEndpoint = Field(alias="toEndPoint")
