"""DailyCredentials: environment, secrecy, and the Block round trip through a real Prefect server."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import sys
import time
import uuid

import pytest
from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogHandler
from pydantic import ValidationError

from daily_sip.tasks.client import DEFAULT_API_URL, DailyClient
from daily_sip.tasks.credentials import DailyCredentials
from daily_sip.tasks.errors import DailyAuthError
from daily_sip.tasks.presence import aget_presence

KEY = "cred-key-9d8e7f-do-not-print"
SECRET = "d2ViaG9vay1zZWNyZXQtZG8tbm90LXByaW50"  # base64 of "webhook-secret-do-not-print"


def block_name() -> str:
    return f"tasks-suite-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def clean_env(monkeypatch):
    for var in ("DAILY_API_KEY", "DAILY_API_URL", "DAILY_WEBHOOK_SECRET"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_from_env_reads_key_url_and_secret(clean_env):
    clean_env.setenv("DAILY_API_KEY", KEY)
    clean_env.setenv("DAILY_API_URL", "http://127.0.0.1:9/v1")
    clean_env.setenv("DAILY_WEBHOOK_SECRET", SECRET)
    creds = DailyCredentials.from_env()
    assert creds.api_key.get_secret_value() == KEY
    assert creds.api_url == "http://127.0.0.1:9/v1"
    assert creds.webhook_secret.get_secret_value() == SECRET


def test_from_env_with_only_a_key_targets_daily(clean_env):
    clean_env.setenv("DAILY_API_KEY", KEY)
    creds = DailyCredentials.from_env()
    assert creds.api_url == DEFAULT_API_URL == "https://api.daily.co/v1"
    assert creds.webhook_secret is None


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_from_env_without_a_key_says_what_to_set(clean_env, value):
    if value is not None:
        clean_env.setenv("DAILY_API_KEY", value)
    clean_env.setenv("DAILY_API_URL", "http://127.0.0.1:9/v1")
    with pytest.raises(ValueError, match="DAILY_API_KEY") as info:
        DailyCredentials.from_env()
    assert "DailyCredentials" in str(info.value)


def test_secrets_never_show_in_repr_str_or_json():
    creds = DailyCredentials(api_key=KEY, webhook_secret=SECRET)
    for text in (repr(creds), str(creds), creds.model_dump_json(), repr(creds.get_client())):
        assert KEY not in text and SECRET not in text


def test_timeout_must_be_positive():
    with pytest.raises(ValidationError, match="timeout_seconds"):
        DailyCredentials(api_key=KEY, timeout_seconds=0)


async def test_get_client_talks_to_the_configured_url_with_the_key(emulator):
    creds = DailyCredentials(api_key=emulator.api_key, api_url=emulator.base_url, timeout_seconds=3)
    daily = creds.get_client()
    try:
        assert isinstance(daily, DailyClient) and daily.api_url == emulator.base_url
        assert daily._http.timeout.read == 3
        assert isinstance(await daily.get_presence(), dict)  # 200 only with the right key
    finally:
        await daily.aclose()
    assert daily.closed


async def test_block_saved_to_the_server_loads_back(prefect_server, emulator):
    name = block_name()
    creds = DailyCredentials(
        api_key=emulator.api_key, api_url=emulator.base_url, webhook_secret=SECRET, timeout_seconds=7
    )
    await creds.save(name, overwrite=True)
    loaded = await DailyCredentials.aload(name)
    assert loaded.api_key.get_secret_value() == emulator.api_key
    assert loaded.webhook_secret.get_secret_value() == SECRET
    assert (loaded.api_url, loaded.timeout_seconds) == (emulator.base_url, 7)
    async with loaded.get_client() as daily:
        assert isinstance(await daily.get_presence(), dict)


async def test_stored_block_document_masks_the_secrets(prefect_server):
    name = block_name()
    await DailyCredentials(api_key=KEY, webhook_secret=SECRET).save(name, overwrite=True)
    async with get_client() as prefect:
        masked = await prefect.read_block_document_by_name(
            name, block_type_slug="daily-credentials", include_secrets=False
        )
        revealed = await prefect.read_block_document_by_name(
            name, block_type_slug="daily-credentials", include_secrets=True
        )
    assert KEY not in str(masked.data) and SECRET not in str(masked.data)
    assert set(masked.data["api_key"]) == {"*"} and set(masked.data["webhook_secret"]) == {"*"}
    assert masked.data["api_url"] == DEFAULT_API_URL
    assert revealed.data["api_key"] == KEY  # stored, just not shown
    assert masked.block_type.slug == "daily-credentials"


def test_prefect_collections_entry_point_is_declared():
    entries = {e.name: e for e in importlib.metadata.entry_points(group="prefect.collections")}
    assert "daily_sip" in entries
    assert entries["daily_sip"].value == "daily_sip.tasks.credentials"


async def run_python(script: str, cwd, env: dict[str, str]) -> tuple[int, str, str]:
    """Run ``python -c script`` in a fresh interpreter without blocking the event loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(120):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode, out.decode(), err.decode()


def fresh_env(prefect_server) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAILY_")}
    return {**env, "PREFECT_API_URL": prefect_server.api_url}


async def test_fresh_process_loads_the_block_by_slug(prefect_server, tmp_path):
    name = block_name()
    await DailyCredentials(api_key=KEY, api_url="http://127.0.0.1:9/v1").save(name, overwrite=True)
    script = (
        "import sys\n"
        "from prefect.blocks.core import Block\n"
        "assert 'daily_sip' not in sys.modules\n"
        f"block = Block.load('daily-credentials/{name}')\n"
        "print(type(block).__module__, type(block).__name__, block.api_url,\n"
        f"      block.api_key.get_secret_value() == {KEY!r})\n"
    )
    code, out, err = await run_python(script, tmp_path, fresh_env(prefect_server))
    assert code == 0, err[-3000:]
    assert out.split() == ["daily_sip.tasks.credentials", "DailyCredentials", "http://127.0.0.1:9/v1", "True"]


async def test_fresh_process_finds_registers_and_saves_the_block_type_by_slug(prefect_server, tmp_path):
    """Nothing imports ``daily_sip``: the entry point alone makes the slug resolve to our class."""
    name = block_name()
    script = (
        "import sys\n"
        "from prefect.blocks.core import Block\n"
        "assert 'daily_sip' not in sys.modules\n"
        "cls = Block.get_block_class_from_key('daily-credentials')\n"
        "cls.register_type_and_schema()\n"
        f"cls(api_key={KEY!r}, api_url='http://127.0.0.1:9/v1', timeout_seconds=4).save({name!r})\n"
        "print(cls.__module__, cls.__name__)\n"
    )
    code, out, err = await run_python(script, tmp_path, fresh_env(prefect_server))
    assert code == 0, err[-3000:]
    assert out.split() == ["daily_sip.tasks.credentials", "DailyCredentials"]
    assert KEY not in out and KEY not in err

    async with get_client() as prefect:
        block_type = await prefect.read_block_type_by_slug("daily-credentials")
    assert block_type.name == "Daily Credentials"
    assert "API key" in block_type.description
    loaded = await DailyCredentials.aload(name)
    assert loaded.api_key.get_secret_value() == KEY
    assert (loaded.api_url, loaded.timeout_seconds) == ("http://127.0.0.1:9/v1", 4)


async def read_flow_run_logs(flow_run_id, must_contain: str, within: float = 30.0) -> list[str]:
    """Every log message the server stored for the flow run, once one contains ``must_contain``."""
    deadline = time.monotonic() + within
    await APILogHandler.aflush()
    async with get_client() as prefect:
        while True:
            logs = await prefect.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            messages = [log.message for log in logs]
            if any(must_contain in m for m in messages):
                return messages
            if time.monotonic() > deadline:
                raise AssertionError(f"no log containing {must_contain!r} within {within}s: {messages}")
            await asyncio.sleep(0.2)


async def test_secrets_never_reach_run_logs_console_or_stored_parameters(
    prefect_server, emulator, clean_env, capfd
):
    """A flow that logs and prints its credentials, then fails on the key: nothing shows the key."""
    clean_env.setenv("DAILY_RATE_LIMIT_SCALE", "0")
    creds = DailyCredentials(api_key=KEY, api_url=emulator.base_url, webhook_secret=SECRET)

    @flow(log_prints=True)
    async def uses_credentials(credentials: DailyCredentials):
        logger = get_run_logger()
        logger.info("credentials repr: %r", credentials)
        logger.info("credentials str: %s; client: %r", credentials, credentials.get_client())
        print("printed:", credentials, credentials.model_dump())
        await aget_presence(credentials=credentials)  # the stand-in does not know this key: 401

    state = await uses_credentials(creds, return_state=True)
    assert state.is_failed()
    with pytest.raises(DailyAuthError):
        await state.aresult()

    flow_run_id = state.state_details.flow_run_id
    messages = await read_flow_run_logs(flow_run_id, "authentication-error")
    assert any("credentials repr" in m for m in messages) and any("printed:" in m for m in messages)
    async with get_client() as prefect:
        run = await prefect.read_flow_run(flow_run_id)
    console = capfd.readouterr()
    for text in ("\n".join(messages), str(run.parameters), console.out, console.err):
        assert KEY not in text and SECRET not in text
