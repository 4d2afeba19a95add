"""Provision: prove the key, borrow or create the room with SIP on, and wait until it is ready."""
