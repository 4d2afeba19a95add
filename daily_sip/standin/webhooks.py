"""The domain's webhook registration and its health: state only, no HTTP.

Daily allows one webhook per domain; it has an `hmac` secret (base64), a `retryType`
(`circuit-breaker` or `exponential`), optional `eventTypes`, and a `state` that turns `FAILED`
after 3 failed deliveries in a row (https://docs.daily.co/reference/rest-api/webhooks,
https://docs.daily.co/reference/rest-api/webhooks/create). Sending deliveries is delivery.py's job.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from .clock import Clock, iso
from .errors import invalid, not_found
from .validation import check_keys, check_object, check_str


@dataclass
class Webhook:
    """The domain's webhook registration (Daily allows one per domain)."""

    uuid: str
    url: str
    hmac: str
    basic_auth: str | None
    retry_type: str
    event_types: list[str]
    created_at: float
    updated_at: float
    state: str = "ACTIVE"
    failed_count: int = 0
    last_moment_pushed: float | None = None

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types

    def to_json(self, domain_id: str) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "url": self.url,
            "hmac": self.hmac,
            "basicAuth": self.basic_auth,
            "retryType": self.retry_type,
            "eventTypes": list(self.event_types),
            "state": self.state,
            "failedCount": self.failed_count,
            "lastMomentPushed": iso(self.last_moment_pushed),
            "domainId": domain_id,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
        }


#: Prefixes of the event types Daily documents (https://docs.daily.co/reference/rest-api/webhooks).
EVENT_FAMILIES = (
    "meeting",
    "participant",
    "waiting-participant",
    "recording",
    "transcript",
    "streaming",
    "batch-processor",
    "dialout",
    "dialin",
    "calltransfer",
)
WEBHOOK_FIELDS = {"url", "eventTypes", "hmac", "basicAuth", "retryType"}
RETRY_TYPES = ("circuit-breaker", "exponential")
#: Failed sends in a row after which Daily marks a `circuit-breaker` webhook FAILED.
CIRCUIT_BREAKER_LIMIT = 3


class WebhookRegistry:
    """Webhook registrations and their health counters; delivery lives in delivery.py."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.hooks: dict[str, Webhook] = {}

    @staticmethod
    def validate(body: Any, *, creating: bool) -> dict[str, Any]:
        """Check a create/update body; returns only the fields that were given."""
        body = check_object("body", body)
        check_keys("", body, WEBHOOK_FIELDS)
        if creating and "url" not in body:
            raise invalid("'url' is required")
        spec: dict[str, Any] = {}
        if "url" in body:
            url = body["url"]
            check_str("url", url)
            if not re.match(r"^https?://[^\s/]+", url):
                raise invalid(f"'url' must be an http(s) URL, got {url!r}")
            spec["url"] = url
        if "eventTypes" in body and body["eventTypes"] is not None:
            types = body["eventTypes"]
            if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
                raise invalid("'eventTypes' must be a list of strings")
            for t in types:
                family, dot, rest = t.partition(".")
                if not dot or not rest or family not in EVENT_FAMILIES:
                    raise invalid(f"'eventTypes' has unknown event type {t!r}")
            spec["eventTypes"] = list(dict.fromkeys(types))
        if "hmac" in body and body["hmac"] is not None:
            secret = body["hmac"]
            check_str("hmac", secret)
            try:
                decoded = base64.b64decode(secret, validate=True)
            except (binascii.Error, ValueError):
                raise invalid("'hmac' must be a base64-encoded secret") from None
            if not decoded:
                raise invalid("'hmac' must not be empty")
            spec["hmac"] = secret
        if "basicAuth" in body:
            if body["basicAuth"] is not None:
                check_str("basicAuth", body["basicAuth"])
            spec["basicAuth"] = body["basicAuth"]
        if "retryType" in body:
            if body["retryType"] not in RETRY_TYPES:
                raise invalid(f"'retryType' must be one of {list(RETRY_TYPES)}")
            spec["retryType"] = body["retryType"]
        return spec

    @staticmethod
    def new_secret() -> str:
        return base64.b64encode(secrets.token_bytes(32)).decode()

    def list(self) -> list[Webhook]:
        return list(self.hooks.values())

    def get(self, hook_id: str) -> Webhook:
        hook = self.hooks.get(hook_id)
        if hook is None:
            raise not_found(f"webhook {hook_id} not found")
        return hook

    def ensure_can_create(self) -> None:
        if self.hooks:
            existing = next(iter(self.hooks))
            raise invalid(
                f"a domain can only have one webhook; {existing} already exists "
                "(update it with POST /webhooks/:uuid or delete it first)"
            )

    def create(self, spec: dict[str, Any]) -> Webhook:
        self.ensure_can_create()
        now = self.clock.now()
        hook = Webhook(
            uuid=str(uuid.uuid4()),
            url=spec["url"],
            hmac=spec.get("hmac") or self.new_secret(),
            basic_auth=spec.get("basicAuth"),
            retry_type=spec.get("retryType", "circuit-breaker"),
            event_types=spec.get("eventTypes", []),
            created_at=now,
            updated_at=now,
        )
        self.hooks[hook.uuid] = hook
        return hook

    def update(self, hook_id: str, spec: dict[str, Any]) -> Webhook:
        """Apply an update that passed verification; also re-activates a FAILED hook."""
        hook = self.get(hook_id)
        hook.url = spec.get("url", hook.url)
        hook.hmac = spec.get("hmac", hook.hmac)
        hook.basic_auth = spec.get("basicAuth", hook.basic_auth)
        hook.retry_type = spec.get("retryType", hook.retry_type)
        hook.event_types = spec.get("eventTypes", hook.event_types)
        hook.state = "ACTIVE"
        hook.failed_count = 0
        hook.updated_at = self.clock.now()
        return hook

    def delete(self, hook_id: str) -> Webhook:
        hook = self.get(hook_id)
        del self.hooks[hook_id]
        return hook

    def record_success(self, hook: Webhook) -> None:
        hook.failed_count = 0
        hook.last_moment_pushed = self.clock.now()

    def record_failure(self, hook: Webhook) -> bool:
        """Count a failed delivery; True when this failure trips the circuit breaker."""
        hook.failed_count += 1
        if (
            hook.retry_type == "circuit-breaker"
            and hook.state == "ACTIVE"
            and hook.failed_count >= CIRCUIT_BREAKER_LIMIT
        ):
            hook.state = "FAILED"
            return True
        return False
