"""The several-server setup in small: 2 API servers behind haproxy, Redis, 2 pacers, one server killed.

Runs ``benchmarks/fleet.py --servers 2`` as a user would (PostgreSQL, Redis, two ``prefect server
start --no-services`` with one ``prefect server services start``, haproxy health-checking them,
two pacers sharing one book in Redis, two workers and the receiver pointed at the balancer) and
kills one API server with SIGKILL once half the dials have started. What a user would notice:
every campaign finished, Daily never answered 429, nothing was left on the stand-in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.ha import missing
from tests.fleet.test_fleet import _has_postgres

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.skipif(
        not _has_postgres(),
        reason="PostgreSQL is not installed (apt-get install -y postgresql; .ci/run does it)",
    ),
    pytest.mark.skipif(missing() is not None, reason=f"the several-server setup needs: {missing()}"),
]


@pytest.mark.timeout(420)
def test_five_campaigns_survive_an_api_server_killed_half_way(tmp_path):
    out = tmp_path / "ha.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "fleet.py"),
            *("--campaigns", "5", "--targets", "3", "--workers", "2"),
            *("--servers", "2", "--pacers", "2", "--kill-server"),
            *("--idle-sample", "1", "--timeout", "300", "--json-out", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert [fault["fault"] for fault in result["faults"]] == ["kill -9 of API server 0"]
    assert result["faults"][0]["dials_after"] > 0  # killed mid-fleet, not after it
    assert result["succeeded"] == 5, (result["states"], result["not_completed"])
    assert result["rate_limited_429"] == 0
    assert result["dialout_starts"] == {"200": 15}
    assert (result["rooms_left"], result["legs_left_up"]) == (0, 0)
    assert result["pacer"]["default/dialout-start"]["granted"] == 15
    assert result["webhooks"]["never_delivered"] == 0
