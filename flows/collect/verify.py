"""Proof that a Prefect event really is a Daily webhook: the flow re-checks Daily's signature.

The receiver verifies each delivery before emitting it, but anyone who can write to the Prefect
API can post an event named ``daily.dialout.answered`` too. So the receiver carries Daily's
``X-Webhook-Timestamp``, ``X-Webhook-Signature`` and the raw body inside the event
(``payload.proof``, see `daily_sip.tasks.signature.proof_of`), and the flow verifies the HMAC again with
the webhook secret from its credentials block
(https://docs.daily.co/reference/rest-api/webhooks#hmac). What the flow then uses is the
envelope decoded from that signed body, never the rest of the Prefect event.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from daily_sip.tasks.signature import Verifier


@dataclass
class Verified:
    """A Daily envelope whose signature checked out."""

    type: str
    event_id: str
    payload: dict[str, Any]
    event_ts: Any


class EventVerifier:
    """Checks ``payload.proof`` of a Prefect event against the webhook secret.

    Example:
        >>> v = EventVerifier(None)
        >>> v.check({"daily_type": "dialout.answered"})[1]
        'no webhook secret in the credentials block, so no event can be verified'
    """

    def __init__(self, secret: SecretStr | None) -> None:
        # No freshness check: events are re-read from history during the run, and a replayed
        # genuine event is harmless here (de-duplicated by id, and only this run's legs count).
        self._verifier = Verifier(secret, None) if secret is not None else None

    def __repr__(self) -> str:
        return f"<EventVerifier secret={'set' if self._verifier else 'missing'}>"

    @property
    def can_verify(self) -> bool:
        return self._verifier is not None

    def check(self, payload: Mapping[str, Any] | None) -> tuple[Verified | None, str | None]:
        """(the signed envelope, None), or (None, why it cannot be trusted)."""
        if self._verifier is None:
            return None, "no webhook secret in the credentials block, so no event can be verified"
        proof = (payload or {}).get("proof")
        if not isinstance(proof, Mapping):
            return None, "no signature proof (not relayed by our receiver)"
        try:
            body = base64.b64decode(str(proof.get("body_b64") or ""), validate=True)
        except (binascii.Error, ValueError):
            return None, "proof body is not base64"
        timestamp, signature = proof.get("timestamp"), proof.get("signature")
        reason = self._verifier.check(
            timestamp if isinstance(timestamp, str) else None,
            signature if isinstance(signature, str) else None,
            body,
            time.time(),
        )
        if reason is not None:
            return None, reason
        try:
            envelope = json.loads(body)
        except ValueError:
            return None, "signed body is not JSON"
        if not isinstance(envelope, dict) or not isinstance(envelope.get("type"), str):
            return None, "signed body is not a Daily envelope"
        inner = envelope.get("payload")
        return Verified(
            type=envelope["type"],
            event_id=str(envelope.get("id")),
            payload=inner if isinstance(inner, dict) else {},
            event_ts=envelope.get("event_ts"),
        ), None
