"""``--spool-dir``: Daily gets its 200 once the event is on disk, whatever Prefect is doing.

Real processes: the receiver (``python -m daily_sip.receiver``) and the session's Prefect server.
"""

from __future__ import annotations

import signal

import pytest

from tests.receiver.helpers import dumps, envelope, signed, unique, wait_for_events
from tests.receiver.test_receiver_http import expected_id


def test_events_taken_while_prefect_is_down_survive_kill_9_and_reach_prefect(
    start_receiver, webhook_secret, unused_tcp_port, prefect_server, tmp_path
):
    spool = str(tmp_path / "spool")
    down = start_receiver(
        secret=webhook_secret, api_url=f"http://127.0.0.1:{unused_tcp_port}/api", args=("--spool-dir", spool)
    )
    room = unique("room")
    sent = [envelope(kind, room, session_id="s-spool") for kind in ("dialout.connected", "dialout.answered")]
    for env in sent:
        body = dumps(env)
        r = down.post(body, signed(webhook_secret, body))
        assert r.status_code == 200, r.text  # Daily is answered although Prefect is unreachable
    assert down.health()["spool"]["pending"] == 2
    down.stop(signal.SIGKILL)

    # Restarted on the same spool with Prefect reachable: what it had taken is handed over.
    up = start_receiver(secret=webhook_secret, args=("--spool-dir", spool))
    events = wait_for_events(prefect_server.api_url, 2, resource_id=f"daily.room.{room}")
    assert sorted(e["id"] for e in events) == sorted(expected_id(env["id"]) for env in sent)
    health = up.health()["spool"]
    assert (health["recovered"], health["pending"]) == (2, 0)


def test_one_spool_directory_serves_one_receiver(start_receiver, webhook_secret, tmp_path):
    spool = str(tmp_path / "spool")
    start_receiver(secret=webhook_secret, args=("--spool-dir", spool))
    with pytest.raises(RuntimeError, match=r"rc=2.*in use by another receiver"):  # one line, exit 2
        start_receiver(secret=webhook_secret, args=("--spool-dir", spool))
