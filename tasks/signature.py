"""Daily's webhook signature: decode the secret, sign, verify (timestamp freshness included).

Daily signs each delivery as ``base64(HMAC-SHA256(base64decode(secret), "<X-Webhook-Timestamp>.<raw
body>"))`` in the ``X-Webhook-Signature`` header
(https://docs.daily.co/reference/rest-api/webhooks#hmac). The decoded key lives only inside
`Verifier`, whose repr hides it and which refuses to be pickled.

The webhook receiver verifies each delivery with it; the campaign flow verifies again, from the
`proof_of` a delivery the receiver puts into the Prefect event (`daily_sip.flows.collect.verify`).
Standard library only (pydantic for the secret's type, at type-checking time).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import SecretStr

SIGNATURE_HEADER = "X-Webhook-Signature"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"


def proof_of(timestamp: str | None, signature: str | None, body: bytes) -> dict[str, str | None]:
    """What a consumer needs to re-verify Daily's signature of a delivery (`Verifier.check`).

    The receiver carries it in each Prefect event's ``payload.proof``.
    """
    return {
        "timestamp": timestamp,
        "signature": signature,
        "body_b64": base64.b64encode(body).decode("ascii"),
    }


def decode_secret(secret: SecretStr) -> bytes:
    raw = secret.get_secret_value().strip()
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        # Deliberately no detail: the message must not echo any part of the secret.
        raise ValueError(
            "the Daily webhook secret is not valid base64 (Daily's `hmac` secrets are base64 strings)"
        ) from None
    if not key:
        raise ValueError("the Daily webhook secret is empty")
    return key


def sign(key: bytes, timestamp: str, body: bytes) -> str:
    """Daily's signature for a delivery , given the *decoded* key."""
    message = timestamp.encode("latin-1") + b"." + body
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode("ascii")


class Verifier:
    """Holds the decoded HMAC key; its repr never shows it."""

    __slots__ = ("_key", "max_age_seconds")

    def __init__(self, secret: SecretStr, max_age_seconds: float | None) -> None:
        self._key = decode_secret(secret)
        self.max_age_seconds = max_age_seconds

    def __repr__(self) -> str:
        return f"<DailyWebhookVerifier secret=********** max_age={self.max_age_seconds}>"

    __str__ = __repr__

    def __reduce__(self):  # never pickle the key
        raise TypeError("the webhook verifier cannot be pickled")

    def check(self, timestamp: str | None, signature: str | None, body: bytes, now: float) -> str | None:
        """None when valid, else a short reason (safe to log and return)."""
        if not timestamp or not signature:
            return "missing signature headers"
        try:
            ts = float(timestamp)
        except ValueError:
            return "invalid timestamp"
        if not math.isfinite(ts):
            return "invalid timestamp"
        if ts > 1e11:  # unit undocumented: treat as milliseconds
            ts /= 1000.0
        if self.max_age_seconds is not None and abs(now - ts) > self.max_age_seconds:
            return "stale timestamp"
        expected = sign(self._key, timestamp, body).encode("ascii")
        if not hmac.compare_digest(expected, signature.encode("latin-1", "replace")):
            return "signature mismatch"
        return None
