"""The chaos soak, small: 10 randomized campaigns with faults leave nothing behind and never dial twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "chaos.py"


@pytest.mark.timeout(900)
def test_ten_chaos_campaigns_leave_nothing_behind(prefect_server, tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "10", "--seed", "3", "--parallel", "5"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        env={**os.environ, "PREFECT_API_URL": prefect_server.api_url},
    )
    figures = dict(line.rsplit("  ", 1) for line in done.stdout.splitlines() if "  " in line)
    figures = {k.strip(): v.strip() for k, v in figures.items()}
    assert figures.get("campaigns") == "10", done.stdout + done.stderr[-3000:]
    leftovers = ("rooms left", "SIP left on", "borrowed rooms not restored", "legs left up", "double dials")
    for column in leftovers:
        assert figures[column] == "0", done.stdout
    assert done.returncode == 0, done.stdout
