"""`daily-sip setup`: one idempotent command stores what the deployments need, secrets unprinted."""

from __future__ import annotations

import os

from prefect.client.orchestration import get_client

from daily_sip.tasks import DailyCredentials

from .conftest import cli

KEY = "setup-test-key-4f1c9a"


async def test_setup_stores_block_limits_pool_and_room_limits_and_is_idempotent(prefect_server, tmp_path):
    campaigns = tmp_path / "campaigns"
    campaigns.mkdir()
    (campaigns / "board.yaml").write_text("room: boardroom\ntargets: [{sip_uri: 'sip:a@b.example.com'}]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAILY_")}
    args = ["daily-sip", "setup", "--block-name", "setup-test", "--work-pool", "setup-test-pool",
            "--campaigns-dir", str(campaigns), "--webhook-url", "https://hooks.example.com/daily",
            "--no-verify"]
    first = cli(*args, "--api-key", KEY, "--api-url", "http://127.0.0.1:9/v1", env=env)
    assert "daily-credentials/setup-test: created" in first.stdout
    assert "webhook secret generated" in first.stdout
    assert "room limit daily-room-boardroom: limit 1" in first.stdout

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
    assert limits["daily-api-dialout-start"] == 5 and limits["daily-room-boardroom"] == 1

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
    done = cli("daily-sip", "setup", "--block-name", "setup-bad", "--api-key", KEY,
               "--webhook-secret", "not base64 at all!", env=env, check=False)
    assert done.returncode == 2
    assert "DAILY_WEBHOOK_SECRET" in done.stderr and "base64" in done.stderr
    assert "not base64 at all" not in done.stdout + done.stderr
