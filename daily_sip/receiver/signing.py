"""Daily's webhook signature, now `daily_sip.tasks.signature` (the flows verify it too).

Kept so ``daily_sip.receiver.signing`` still imports; new code imports the tasks module.
"""

from daily_sip.tasks.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, Verifier, decode_secret, sign

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "Verifier", "decode_secret", "sign"]
