"""Cost of the flow re-verifying Daily's signature on every relayed event (prints figures).

.venv/bin/python benchmarks/event_verification.py [N]
"""

from __future__ import annotations

import json
import sys
import time

from pydantic import SecretStr

from daily_sip.flows.collect.verify import EventVerifier
from daily_sip.local_stack import new_webhook_secret
from daily_sip.receiver.events import proof_of, to_prefect_event
from daily_sip.tasks.signature import decode_secret, sign


def main(n: int = 20_000) -> None:
    secret = new_webhook_secret()
    envelope = {
        "version": "1.0.0",
        "type": "dialout.answered",
        "id": "1-dialout-answered-x",
        "event_ts": time.time(),
        "payload": {
            "room": "r",
            "session_id": "s" * 36,
            "user_id": "u" * 20,
            "timestamp": "1700000000",
            "destination": "sip:123456789@zoomcrc.com",
        },
    }
    body = json.dumps(envelope).encode()
    ts = str(int(time.time()))
    event = to_prefect_event(envelope, proof_of(ts, sign(decode_secret(SecretStr(secret)), ts, body), body))
    payload = event.payload
    verifier = EventVerifier(SecretStr(secret))
    start = time.perf_counter()
    for _ in range(n):
        ok, _reason = verifier.check(payload)
        assert ok is not None
    elapsed = time.perf_counter() - start
    size = len(json.dumps(event.model_dump(mode="json")))
    print(
        f"verified {n} events in {elapsed:.3f} s: {1e6 * elapsed / n:.1f} us per event; "
        f"event size with proof {size} bytes (body {len(body)} bytes)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
