"""`daily-sip dev`: one command brings up the whole local stack, deployed; SIGTERM stops all of it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.test_terminal import assert_commands_run_as_printed

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=3)
    except httpx.HTTPError:
        return False
    return True


def test_dev_starts_everything_deployed_and_sigterm_stops_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DAILY_"))}
    cmd = [str(BIN / "daily-sip"), "dev", "--workdir", str(tmp_path / "dev")]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=REPO,  # as a user runs it, from the repository root (its files go under --workdir)
        start_new_session=True,
    )
    out = ""
    try:
        deadline = time.monotonic() + 400
        while "Ctrl-C (or SIGTERM) stops everything." not in out:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, f"dev exited early:\n{out}"
            out += line
            assert time.monotonic() < deadline, f"dev not ready:\n{out}"
        urls = {
            name: re.search(rf"{name}\s+(http\S+)", out).group(1)
            for name in ("Prefect API", "Daily stand-in", "Webhook receiver", "Pacer")
        }
        assert _answers(urls["Prefect API"] + "/health")
        deployments = httpx.post(urls["Prefect API"] + "/deployments/filter", json={}, timeout=10).json()
        assert {"adhoc", "on-request", "standup-meeting"} <= {d["name"] for d in deployments}
        assert _answers(urls["Daily stand-in"] + "/rooms") and _answers(urls["Webhook receiver"])
        assert _answers(urls["Pacer"] + "/healthz")  # the worker paces through it, as a fleet would
        # Every command it suggests runs as printed from there, venv activated or not.
        assert_commands_run_as_printed(out, REPO, at_least=4)
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=90)
        assert proc.returncode == 0 and "Stopped everything." in rest, rest
        for url in urls.values():
            assert not _answers(url), f"{url} still answers after SIGTERM"
    finally:
        if proc.poll() is None:  # a failed check: SIGTERM first, so dev stops the servers it started
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
