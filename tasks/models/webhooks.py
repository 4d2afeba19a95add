"""Webhook registration (one per Daily domain) and the signed event envelopes Daily posts."""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

from pydantic import Field, SecretStr, field_serializer, field_validator

from .base import DailyRequest, DailyResponse


def _check_base64_secret(value: SecretStr | None) -> SecretStr | None:
    if value is None:
        return None
    try:
        raw = base64.b64decode(value.get_secret_value(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64 (Daily decodes it to get the HMAC key)") from None
    if not raw:
        raise ValueError("must not be empty")
    return value


class WebhookSettings(DailyRequest):
    """Body of ``POST /webhooks`` and ``POST /webhooks/:uuid``.

    Example:
        >>> body = WebhookSettings(url="https://hooks.example.com/daily", retry_type="exponential",
        ...                        hmac="c2VjcmV0").to_body()
        >>> body["retryType"], body["hmac"]
        ('exponential', 'c2VjcmV0')
    """

    url: str = Field(pattern=r"^https?://[^\s]+$")
    event_types: list[str] | None = Field(default=None, alias="eventTypes")
    hmac: SecretStr | None = None
    basic_auth: SecretStr | None = Field(default=None, alias="basicAuth")
    retry_type: Literal["circuit-breaker", "exponential"] | None = Field(default=None, alias="retryType")

    _hmac_is_base64 = field_validator("hmac")(_check_base64_secret)

    @field_serializer("hmac", "basic_auth", when_used="json")
    def _reveal_for_the_wire(self, value: SecretStr | None) -> str | None:
        # Only the request body sees the secret; repr, str and logs keep the mask.
        return value.get_secret_value() if value is not None else None


class Webhook(DailyResponse):
    """A webhook as Daily returns it. The ``hmac`` secret stays masked in reprs and logs."""

    uuid: str
    url: str
    hmac: SecretStr | None = None
    basic_auth: SecretStr | None = Field(default=None, alias="basicAuth")
    retry_type: str | None = Field(default=None, alias="retryType")
    event_types: list[str] | None = Field(default=None, alias="eventTypes")
    # Daily's docs disagree on values (ACTIVE/FAILED/INACTIVE, or numbers in an old spec).
    state: str | int | None = None
    failed_count: int | None = Field(default=None, alias="failedCount")
    last_moment_pushed: str | float | None = Field(default=None, alias="lastMomentPushed")
    domain_id: str | None = Field(default=None, alias="domainId")
    created_at: str | float | None = Field(default=None, alias="createdAt")
    updated_at: str | float | None = Field(default=None, alias="updatedAt")

    @property
    def failed(self) -> bool:
        """True when Daily stopped delivering; an update with the same URL revives it.

        Daily's pages name that state ``FAILED`` (https://docs.daily.co/reference/rest-api/webhooks)
        or ``INACTIVE`` (https://docs.daily.co/reference/rest-api/webhooks/create), an older
        spec FAILED 0 / STOPPED 2: each of them counts.
        """
        return str(self.state).upper() in ("FAILED", "INACTIVE", "STOPPED", "0", "2")


class WebhookEvent(DailyResponse):
    """The envelope of every delivery: ``{version, type, id, payload, event_ts}``."""

    version: str | None = None
    type: str
    id: str
    payload: dict[str, Any] = Field(default_factory=dict)
    event_ts: float | None = None

    def typed_payload(self) -> DailyResponse:
        """The payload as the model for its ``type`` (unknown types stay a plain model)."""
        from .events import PAYLOAD_MODELS, EventPayload

        return PAYLOAD_MODELS.get(self.type, EventPayload).model_validate(self.payload)
