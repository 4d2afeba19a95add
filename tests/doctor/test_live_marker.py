"""`pytest -m live` offline: the live contract is collected and skipped, saying how to run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_live_tests_are_collected_and_skipped_offline_with_the_reason():
    env = {k: v for k, v in os.environ.items() if k not in ("DAILY_LIVE", "DAILY_API_KEY")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "live",
            "-n",
            "0",
            "-q",
            "-rs",
            "tests/tasks/test_contract.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "1 skipped" in out and "deselected" in out, out
    assert "set DAILY_LIVE=1 and DAILY_API_KEY" in out, out
    assert (
        "test_every_operation_is_accepted_by_daily_and_answers_like_the_stand_in" in out or "SKIPPED" in out
    )
