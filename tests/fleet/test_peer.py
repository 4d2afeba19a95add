"""The plain-script peer (``benchmarks/peer.py``) alone against a stand-in, small and fast.

It must do all the Daily work it is compared on (every dial answered, held, hung up, every room
deleted), never draw a 429 from its shared windows, leave nothing behind, and its webhook
endpoint must turn away what Daily did not sign. Speed is the benchmark's business, not asserted.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from daily_sip.local_stack import new_webhook_secret
from daily_sip.receiver.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, decode_secret, sign

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "peer.py"


def _peer_module():
    spec = importlib.util.spec_from_file_location("peer", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["peer"] = module  # its dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(120)
def test_two_campaigns_of_two_complete_without_429_or_leftovers(start_emulator, tmp_path):
    emu = start_emulator(rate_limit_scale=10, connect_delay=0.05, answer_delay=0.05)
    out = tmp_path / "peer.json"
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--daily-url",
            emu.base_url,
            "--api-key",
            emu.api_key,
            "--campaigns",
            "2",
            "--targets",
            "2",
            "--rate-scale",
            "10",
            "--standin-pid",
            str(emu.proc.pid),
            "--json-out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=100,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert (result["completed_dials"], result["failed_count"]) == (4, 0), result["failed"]
    assert result["rate_limited_429"] == 0 and result["rate_limited_429_seen_by_peer"] == 0
    assert result["requests_by_route"]["POST /rooms/{name}/dialOut/start"] == {"200": 4}
    assert result["requests_by_route"]["POST /rooms/{name}/dialOut/stop"] == {"200": 4}
    assert result["rooms_deleted"] == 2
    assert (result["rooms_left"], result["legs_left_up"]) == (0, 0)
    # Every signed delivery was taken; the stand-in agrees nothing is left and no webhook remains.
    assert result["webhooks"]["accepted"] > 0 and result["webhooks"]["rejected"] == 0
    assert emu.introspect("rooms") == []
    assert not any(leg.get("active") for leg in emu.introspect("legs"))
    assert emu.introspect("state")["webhooks"] == []
    assert result["cpu_seconds"]["peer_process"] > 0 and result["cpu_seconds"]["standin"] is not None


def test_the_endpoint_turns_away_a_forged_webhook():
    peer = _peer_module()
    secret = new_webhook_secret()
    forger = new_webhook_secret()

    def delivery(key_secret: str | None, kind: str = "dialout.answered") -> tuple[bytes, dict]:
        body = json.dumps(
            {
                "version": "1.0.0",
                "type": kind,
                "id": f"1-{kind}-{time.time()}",
                "payload": {"room": "r", "user_id": "r-0", "session_id": "s"},
                "event_ts": time.time(),
            }
        ).encode()
        if key_secret is None:
            return body, {"Content-Type": "application/json"}
        ts = str(int(time.time()))
        signature = sign(decode_secret(SecretStr(key_secret)), ts, body)
        return body, {"Content-Type": "application/json", TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: signature}

    async def scenario() -> None:
        endpoint = peer.Endpoint(secret)
        leg = endpoint.legs["r-0"] = peer.Leg()
        async with peer.serving(endpoint) as url, httpx.AsyncClient(timeout=10) as http:
            for forged in (forger, None):  # signed with another key; not signed at all
                body, headers = delivery(forged)
                answer = await http.post(url, content=body, headers=headers)
                assert answer.status_code == 401, answer.text
            assert not leg.answered.is_set() and endpoint.accepted == 0 and endpoint.rejected == 2
            # A signature over a different body (the forged one replayed with Daily's headers).
            body, headers = delivery(secret)
            answer = await http.post(url, content=body.replace(b"r-0", b"r-1"), headers=headers)
            assert answer.status_code == 401 and endpoint.rejected == 3
            answer = await http.post(url, content=body, headers=headers)
            assert answer.status_code == 200, answer.text
            assert leg.answered.is_set() and endpoint.accepted == 1

    asyncio.run(scenario())
