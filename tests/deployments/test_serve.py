"""`daily-sip serve`: the same deployments, run by the serving process instead of a worker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator

import pytest
from prefect.client.orchestration import get_client

from tests.conftest import stop_process
from tests.flows.conftest import start_stack, stop_stack

from .conftest import BIN, QUICK_CAMPAIGN, REPO, cli, run_adhoc

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def served(prefect_server, tmp_path_factory) -> Iterator[tuple]:
    stack = start_stack(prefect_server.api_url)
    cli(
        "daily-sip",
        "setup",
        "--api-key",
        stack.emulator.api_key,
        "--api-url",
        stack.emulator.base_url,
        "--webhook-secret",
        os.environ["DAILY_WEBHOOK_SECRET"],
        "--webhook-url",
        stack.webhook_url,
    )
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {k: v for k, v in os.environ.items() if k not in ("DAILY_API_KEY", "DAILY_API_URL")}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "daily-sip"), "serve", "--name", "adhoc", "--name", "on-request"],
            cwd=REPO,
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield stack, proc, log
    finally:
        stop_process(proc)
        stop_stack(stack)


def test_list_shows_what_would_be_served(prefect_server):
    done = cli("daily-sip", "serve", "--list")
    assert "dial-campaign/weekday-standup: schedule 55 8 * * 1-5 (Europe/Berlin)" in done.stdout
    assert "dial-campaign/on-request: on daily.campaign.requested" in done.stdout
    assert "dial-campaign/adhoc: ad hoc runs only" in done.stdout


async def test_served_adhoc_deployment_runs_a_campaign(served):
    _stack, proc, log = served
    deadline = time.monotonic() + 90
    # Serving has begun once it says so (the deployment may still name the work pool a previous
    # `prefect deploy` gave it; the serving process picks up its runs by deployment id anyway).
    while "being served" not in log.read_text(errors="replace"):
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        await asyncio.sleep(1)
    t0 = time.monotonic()
    run_id = run_adhoc(QUICK_CAMPAIGN, "--watch", "--watch-timeout", "120", timeout=150, check=False)
    async with get_client() as client:
        run = await client.read_flow_run(run_id)
    print(f"serve: deployment run -> {run.state.type.value} in {time.monotonic() - t0:.1f} s")
    assert run.state.is_completed(), (run.state, log.read_text()[-3000:])
    assert run.state.message == "1/2 bridges joined; busy 1"


def test_receiver_takes_its_secret_from_the_block_setup_saved(served):
    import httpx

    from tests.receiver.helpers import dumps, envelope, new_secret, signed

    env = {k: v for k, v in os.environ.items() if k != "DAILY_WEBHOOK_SECRET"}
    cmd = [str(BIN / "daily-sip"), "receiver", "--port", "0", "--credentials-block", "daily"]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        body = dumps(envelope("dialout.answered", "block-room"))
        good = httpx.post(url, content=body, headers=signed(os.environ["DAILY_WEBHOOK_SECRET"], body))
        forged = httpx.post(url, content=body, headers=signed(new_secret(), body))
        assert (good.status_code, forged.status_code) == (200, 401)
    finally:
        stop_process(proc)
