"""A deployed project on the session Prefect server: `daily-sip setup`, `prefect deploy`, a worker.

Everything is done the way the README tells a user to, through the same commands, so the tests
prove that sequence: the stand-in plays Daily, the receiver turns its webhooks into events, and a
real `prefect worker` runs the flow runs in subprocesses.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import pytest
import yaml

from tests.conftest import stop_process
from tests.flows.conftest import CampaignStack, start_stack, stop_stack

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TIMINGS = REPO / "test-artifacts" / "deployment-timings.json"

# A campaign that finishes in a few seconds on the stand-in's fast timings.
QUICK_CAMPAIGN = {
    "name": "e2e-quick",
    "targets": [
        {
            "sip_uri": "sip:bridge-a@e2e.example.com",
            "display_name": "Bridge A",
            "dtmf": "12#",
            "dtmf_delay_seconds": 0.2,
            "join_confirm_seconds": 0.5,
        },
        {"sip_uri": "sip:busy@e2e.example.com", "display_name": "Busy line"},
    ],
    "ring_timeout_seconds": 5,
    "after_answer": {"mode": "hang_up_after", "hold_seconds": 0.5},
    "success": {"min_answered": 1, "min_answered_fraction": 0},
    "ready_timeout_seconds": 10,
}


def cli(
    *args: str, timeout: float = 180, check: bool = True, env: dict | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess:
    exe = BIN / args[0]
    done = subprocess.run(
        [str(exe), *args[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or dict(os.environ),
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done


def run_adhoc(campaign: dict, *extra: str, timeout: float = 60, check: bool = True) -> UUID:
    """`prefect deployment run dial-campaign/adhoc --param campaign=...`; the new run's id.

    With ``--watch`` the exit code is the run's outcome: pass ``check=False`` and look at the run.
    """
    done = cli(
        "prefect",
        "deployment",
        "run",
        "dial-campaign/adhoc",
        *extra,
        "--param",
        f"campaign={json.dumps(campaign)}",
        timeout=timeout,
        check=check,
    )
    found = re.search(r"UUID: ([0-9a-f-]{36})", done.stdout)
    assert found, f"no flow run created:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return UUID(found.group(1))


@dataclass
class Deployed:
    stack: CampaignStack
    worker: subprocess.Popen
    worker_log: Path
    deploy_seconds: float
    timings: dict[str, float] = field(default_factory=dict)

    def record(self, name: str, seconds: float) -> None:
        self.timings[name] = round(seconds, 1)
        TIMINGS.parent.mkdir(exist_ok=True)
        figures = {"prefect deploy --all (5 deployments)": round(self.deploy_seconds, 1), **self.timings}
        TIMINGS.write_text(json.dumps(figures, indent=2))

    def worker_tail(self) -> str:
        return self.worker_log.read_text(errors="replace")[-4000:]


def _starter_with_test_schedule(tmp: Path) -> Path:
    """`daily-sip init` into a fresh folder, plus one deployment on a short interval.

    The campaign file and the schedule are the only differences from the starter a user gets.
    """
    cli("daily-sip", "init", str(tmp))
    (tmp / "campaigns" / "every-minute.yaml").write_text(
        # A loaded machine may start the worker minutes late; lateness is test_start_window's subject.
        yaml.safe_dump({**QUICK_CAMPAIGN, "name": "e2e-scheduled", "start_window_seconds": 3600})
    )
    prefect_file = tmp / "prefect.yaml"
    data = yaml.safe_load(prefect_file.read_text())
    scheduled = next(d for d in data["deployments"] if d["name"] == "weekday-standup")
    step = "daily_sip.deployments.steps.campaign_from_file"
    test = {
        **scheduled,
        "name": "e2e-interval",
        "tags": ["e2e"],
        "build": [{step: {"id": "campaign_file", "path": "campaigns/every-minute.yaml"}}],
        # Starts a few seconds after deploy, then every 10 minutes (the test deletes it first).
        "schedules": [{"interval": 600, "anchor_date": _in_seconds(25), "timezone": "UTC"}],
    }
    data["deployments"].append(test)
    prefect_file.write_text(yaml.safe_dump(data, sort_keys=False))
    return tmp


def _in_seconds(seconds: float) -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


@pytest.fixture(scope="module")
def deployed(prefect_server, tmp_path_factory) -> Iterator[Deployed]:
    tmp = tmp_path_factory.mktemp("deploy")
    stack = start_stack(prefect_server.api_url)
    env = dict(os.environ)
    secret = env["DAILY_WEBHOOK_SECRET"]
    # The README's sequence: setup stores everything on the server ...
    cli(
        "daily-sip",
        "setup",
        "--api-key",
        stack.emulator.api_key,
        "--api-url",
        stack.emulator.base_url,
        "--webhook-secret",
        secret,
        "--webhook-url",
        stack.webhook_url,
    )
    # ... deploy ...
    # ... write the starter and deploy it from its folder ...
    project = _starter_with_test_schedule(tmp / "deployments")
    t0 = time.monotonic()
    cli("prefect", "--no-prompt", "deploy", "--all", cwd=project)
    deploy_seconds = time.monotonic() - t0
    # ... and a worker, which knows Daily only through the block (no DAILY_API_* here).
    worker_env = {
        k: v for k, v in env.items() if k not in ("DAILY_API_KEY", "DAILY_API_URL", "DAILY_WEBHOOK_SECRET")
    }
    worker_env.update(
        PREFECT_WORKER_QUERY_SECONDS="2", PREFECT_WORKER_PREFETCH_SECONDS="5", PYTHONUNBUFFERED="1"
    )
    worker_log = tmp / "worker.log"
    with open(worker_log, "wb") as log:
        worker = subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", "daily-sip", "--type", "process"],
            cwd=tmp,
            env=worker_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield Deployed(stack, worker, worker_log, deploy_seconds)
    finally:
        stop_process(worker)
        stop_stack(stack)
