"""`daily-sip setup`: one idempotent command stores what the deployments need, secrets unprinted."""

from __future__ import annotations

import os

from prefect.client.orchestration import get_client

from daily_sip.local_stack import free_port
from daily_sip.tasks import DailyCredentials

from .conftest import cli

KEY = "setup-test-key-4f1c9a"


async def test_setup_stores_block_and_pool_and_is_idempotent(prefect_server, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAILY_")}
    args = [
        "daily-sip",
        "setup",
        "--block-name",
        "setup-test",
        "--work-pool",
        "setup-test-pool",
        "--webhook-url",
        "https://hooks.example.com/daily",
        "--no-verify",
    ]
    first = cli(*args, "--api-key", KEY, "--api-url", "http://127.0.0.1:9/v1", env=env)
    assert "daily-credentials/setup-test: created" in first.stdout
    assert "webhook secret generated" in first.stdout
    assert "DAILY_PACER_URL not set" in first.stdout  # says how the rate limits will be kept

    block = await DailyCredentials.aload("setup-test")
    assert block.api_key.get_secret_value() == KEY
    assert block.api_url == "http://127.0.0.1:9/v1"
    secret = block.webhook_secret.get_secret_value()
    for output in (first.stdout, first.stderr):
        assert KEY not in output and secret not in output

    async with get_client() as client:
        pool = await client.read_work_pool("setup-test-pool")
        limits = {gcl.name: gcl.limit for gcl in await client.read_global_concurrency_limits()}
    assert pool.type == "process"
    # No global limits that would govern nothing: the pacer keeps Daily's limits, a Variable lease the rooms.
    assert not [name for name in limits if name.startswith(("daily-api-", "daily-room-"))], limits

    # Again without the key: nothing changes, the generated secret is kept.
    second = cli(*args, env=env)
    assert "daily-credentials/setup-test: unchanged" in second.stdout
    assert "webhook secret kept" in second.stdout
    assert "work pool setup-test-pool: exists" in second.stdout
    assert "daily_webhook_url: unchanged" in second.stdout
    again = await DailyCredentials.aload("setup-test")
    assert again.webhook_secret.get_secret_value() == secret


def test_setup_refuses_a_secret_that_is_not_base64_without_echoing_it(prefect_server):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAILY_")}
    done = cli(
        "daily-sip",
        "setup",
        "--block-name",
        "setup-bad",
        "--api-key",
        KEY,
        "--webhook-secret",
        "not base64 at all!",
        env=env,
        check=False,
    )
    assert done.returncode == 2
    assert "DAILY_WEBHOOK_SECRET" in done.stderr and "base64" in done.stderr
    assert "not base64 at all" not in done.stdout + done.stderr


async def test_setup_with_a_dead_pacer_url_saves_nothing_and_says_so(prefect_server):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAILY_")}
    env["DAILY_PACER_URL"] = f"http://127.0.0.1:{free_port()}"
    done = cli(
        "daily-sip",
        "setup",
        "--block-name",
        "setup-dead-pacer",
        "--api-key",
        KEY,
        "--no-verify",
        env=env,
        check=False,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "Nothing saved" in lines[0] and "DAILY_PACER_URL" in lines[0] and "daily_sip.pacer" in lines[0]
    async with get_client() as client:
        names = [b.name for b in await client.read_block_documents()]
    assert "setup-dead-pacer" not in names
