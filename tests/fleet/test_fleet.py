"""The fleet benchmark in small: 5 campaigns x 3 targets, two workers, Prefect on PostgreSQL.

Runs ``benchmarks/fleet.py`` as a user would (its own PostgreSQL cluster, Prefect server, stand-in
at Daily's real limits, receiver, pacer, two in-process ``daily-sip worker``s) and checks what a user would
notice: every campaign finished with its report, Daily never answered 429, nothing was left on
the stand-in. Speed figures are printed by the benchmark, not asserted here.
"""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _has_postgres() -> bool:
    """initdb on PATH or where Debian's postgresql package puts it (the benchmark looks there too)."""
    return bool(shutil.which("initdb") or glob.glob("/usr/lib/postgresql/*/bin/initdb"))


pytestmark = pytest.mark.skipif(
    not _has_postgres(),
    reason="PostgreSQL is not installed (apt-get install -y postgresql; .ci/run does it)",
)


@pytest.mark.timeout(420)
def test_five_campaigns_on_two_workers_share_dailys_limits(tmp_path):
    out = tmp_path / "fleet.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "fleet.py"),
            "--campaigns",
            "5",
            "--targets",
            "3",
            "--workers",
            "2",
            "--idle-sample",
            "2",
            "--timeout",
            "300",
            "--json-out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["succeeded"] == 5, result["states"]
    assert result["rate_limited_429"] == 0
    assert result["dialout_starts"] == {"200": 15}
    assert result["runs_reporting_resources"] == 5  # each run logged what it cost
    assert (result["rooms_left"], result["legs_left_up"]) == (0, 0)
    # Every start had a permit, none was wasted, and every one was reported answered.
    assert result["pacer"]["default/dialout-start"]["granted"] == 15
    assert all(book["open"] == 0 for book in result["pacer"].values()), result["pacer"]
    # Every event Daily (the stand-in) sent was taken by the receiver; none left queued at Daily.
    assert result["webhooks"]["never_delivered"] == 0 and result["webhooks"]["delivered"] > 0
