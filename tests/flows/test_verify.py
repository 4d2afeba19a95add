"""The flow's own check of Daily's signature on relayed events (no servers needed)."""

from __future__ import annotations

import asyncio
import json
import time

from pydantic import SecretStr

from daily_sip.flows.collect.listener import EventRouter
from daily_sip.flows.collect.verify import EventVerifier
from daily_sip.local_stack import new_webhook_secret
from daily_sip.receiver.events import proof_of, to_prefect_event
from daily_sip.tasks.signature import decode_secret, sign

SECRET = new_webhook_secret()


def relayed(envelope: dict, secret: str = SECRET, tamper: bytes | None = None):
    """What our receiver emits for a delivery Daily signed with `secret`."""
    body = json.dumps(envelope).encode()
    ts = str(int(time.time()))
    signature = sign(decode_secret(SecretStr(secret)), ts, body)
    return to_prefect_event(envelope, proof_of(ts, signature, tamper or body))


def answered(user: str, room: str = "r1", n: int = 1) -> dict:
    return {
        "version": "1.0.0",
        "type": "dialout.answered",
        "id": f"ev-{user}-{n}",
        "event_ts": time.time(),
        "payload": {"room": room, "session_id": f"s-{user}", "user_id": user, "timestamp": "1"},
    }


async def test_router_takes_only_signed_events_for_its_own_legs():
    router = EventRouter(EventVerifier(SecretStr(SECRET)), "r1")
    mine = router.queue("run-0-1")
    router.feed(relayed(answered("run-0-1")))
    router.feed(relayed(answered("run-0-1")))  # redelivered: same Daily id
    router.feed(relayed(answered("someone-else", n=2)))  # signed, but not a leg of this run
    router.feed(relayed(answered("run-0-1", room="r2", n=3)))  # another room
    forged_body = json.dumps(answered("run-0-1", n=4)).encode().replace(b"answered", b"answerex")
    router.feed(relayed(answered("run-0-1", n=4), tamper=forged_body))  # body changed after signing
    router.feed(relayed(answered("run-0-1", n=5), secret=new_webhook_secret()))  # not Daily's key
    router.feed(to_prefect_event(answered("run-0-1", n=6)))  # no proof at all
    assert mine.qsize() == 1 and (await asyncio.wait_for(mine.get(), 1)).type == "dialout.answered"
    # Only the events meant for this run count as received (not the other run's leg).
    assert (router.accepted, router.duplicates, router.forged, router.foreign) == (1, 1, 3, 2)


async def test_events_of_sessions_this_run_never_started_are_not_counted_as_received():
    router = EventRouter(EventVerifier(SecretStr(SECRET)), "r1")
    by_session = answered("x", n=1)
    del by_session["payload"]["user_id"]  # Daily may name only the session
    other = answered("y", n=2)
    del other["payload"]["user_id"]
    router.feed(relayed(by_session))
    router.feed(relayed(other))
    assert router.accepted == 0  # whose they are is not known yet
    router.bind("s-x", "run-0-1")  # this run's leg: its early event is handed over and counted
    assert router.accepted == 1 and router.queue("run-0-1").qsize() == 1


def test_without_a_secret_nothing_is_trusted():
    router = EventRouter(EventVerifier(None), "r1")
    router.queue("run-0-1")
    router.feed(relayed(answered("run-0-1")))
    assert (router.accepted, router.forged) == (0, 1)
