"""Every user mistake on the command line: exit 2, one line on stderr naming cause and fix, no traceback.

Each case runs the real `daily-sip` console script in a subprocess, as a user would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from daily_sip.local_stack import free_port

BIN = Path(sys.executable).parent
GOOD = "name: cli-errors\ntargets:\n  - sip_uri: sip:bridge@cli.example.com\n"


def daily_sip(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "daily-sip"), *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd
    )


def assert_one_line(done: subprocess.CompletedProcess, code: int, *words: str) -> None:
    """Exit code, no traceback, and one line naming the cause (a list of bad fields is its header
    line plus one line per field, as `validate` promises)."""
    lines = [
        line
        for line in done.stderr.splitlines()
        if line.strip() and not line.endswith("campaign is not valid:")
    ]
    shown = f"exit {done.returncode}\nstdout:\n{done.stdout[-2000:]}\nstderr:\n{done.stderr[-3000:]}"
    assert done.returncode == code, shown
    assert len(lines) == 1, shown
    assert "Traceback" not in done.stdout + done.stderr, shown
    for word in words:
        assert word in lines[0], shown


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "latin1.yaml").write_bytes("name: Zürich\ntargets: []\n".encode("latin-1"))
    (tmp_path / "folder.yaml").mkdir()
    (tmp_path / "octal.yaml").write_text(
        "targets:\n  - sip_uri: sip:bridge@cli.example.com\n    dtmf: 0123\n"
    )
    return tmp_path


def _no_server_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DAILY_"))}
    # A home of its own, so no profile on this machine supplies an API URL.
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), DAILY_RATE_LIMIT_SCALE="0", **extra)
    return env


DEAD = f"http://127.0.0.1:{free_port()}"

NO_SERVER_CASES = [
    # (command line, extra environment, exit code, words in the line)
    (["validate", "missing.yaml"], {}, 2, ["missing.yaml", "no such file"]),
    (["validate", "folder.yaml"], {}, 2, ["is a directory"]),
    (["validate", "latin1.yaml"], {}, 2, ["not UTF-8", "save it as UTF-8"]),
    (["--debug", "validate", "latin1.yaml"], {}, 2, ["not UTF-8"]),
    (["validate", "octal.yaml"], {}, 2, ["dtmf", "quote it"]),
    (["run", "missing.yaml"], {}, 2, ["no such file"]),
    (["run", "latin1.yaml"], {}, 2, ["not UTF-8"]),
    (["run", "good.yaml"], {}, 2, ["PREFECT_API_URL is not set", "prefect server start"]),
    (["run", "good.yaml"], {"PREFECT_API_URL": f"{DEAD}/api"}, 2, ["no Prefect server answers"]),
    (["demo", "--campaign-file", "missing.yaml"], {}, 2, ["no such file"]),
    (["setup", "--api-key", "k"], {}, 2, ["PREFECT_API_URL is not set"]),
    (["setup", "--api-key", "k"], {"PREFECT_API_URL": f"{DEAD}/api"}, 2, ["no Prefect server answers"]),
    (["serve", "--list"], {"PREFECT_API_URL": f"{DEAD}/api"}, 2, ["no Prefect server answers"]),
]


@pytest.mark.parametrize(
    ("args", "extra", "code", "words"),
    NO_SERVER_CASES,
    ids=[" ".join(c[0]) + (" (dead server)" if c[1] else "") for c in NO_SERVER_CASES],
)
def test_mistakes_without_a_server_are_one_line(files, args, extra, code, words):
    done = daily_sip(*args, env=_no_server_env(files, **extra), cwd=files)
    assert_one_line(done, code, *words)


SERVER_CASES = [
    # (command line, DAILY_API_KEY, DAILY_API_URL (None: the stand-in's), exit code, words)
    (["run", "good.yaml"], "wrong-key", None, 2, ["refused the API key", "DAILY_API_KEY"]),
    (["run", "good.yaml"], "KEY", DEAD + "/v1", 2, ["cannot reach the Daily API", "DAILY_API_URL"]),
    (["run", "good.yaml"], "KEY", "STANDIN_ROOT", 2, ["is not the Daily REST API", "/v1"]),
    (["run", "good.yaml"], "", None, 2, ["no Daily credentials", "DAILY_API_KEY"]),
    (
        ["run", "good.yaml", "--credentials-block", "nosuchblock"],
        "KEY",
        None,
        2,
        ["no DailyCredentials block named 'nosuchblock'", "daily-sip setup"],
    ),
    (
        ["report", "00000000-0000-4000-8000-000000000000"],
        "KEY",
        None,
        2,
        ["no flow run", "prefect flow-run ls"],
    ),
    (["setup", "--block-name", "cli-errors"], "wrong-key", None, 2, ["Nothing saved", "refused the API key"]),
    (["setup", "--block-name", "cli-errors"], "KEY", DEAD + "/v1", 2, ["Nothing saved", "cannot reach"]),
]


@pytest.mark.parametrize(
    ("args", "key", "url", "code", "words"),
    SERVER_CASES,
    ids=[
        f"{' '.join(c[0])} key={c[1] or 'none'} "
        f"url={'dead' if c[2] and c[2].startswith(DEAD) else c[2] or 'stand-in'}"
        for c in SERVER_CASES
    ],
)
def test_mistakes_about_daily_are_one_line_and_touch_nothing(
    prefect_server, emulator, files, args, key, url, code, words
):
    env = _no_server_env(files, PREFECT_API_URL=prefect_server.api_url)
    key = emulator.api_key if key == "KEY" else key
    url = {None: emulator.base_url, "STANDIN_ROOT": emulator.root}.get(url, url)
    if key:
        env["DAILY_API_KEY"] = key
    env["DAILY_API_URL"] = url
    rooms_before = len(emulator.introspect("rooms"))
    done = daily_sip(*args, env=env, cwd=files)
    assert_one_line(done, code, *words)
    assert key not in done.stderr or not key
    assert len(emulator.introspect("rooms")) == rooms_before  # nothing provisioned


def test_a_webhook_secret_that_is_not_base64_is_one_line_before_any_call(prefect_server, emulator, files):
    # Nothing is asked of Daily and no flow run is left behind: the secret is checked first.
    import asyncio

    from prefect.client.orchestration import get_client

    async def flow_runs() -> int:
        async with get_client() as client:
            return len(await client.read_flow_runs(limit=200))

    env = _no_server_env(files, PREFECT_API_URL=prefect_server.api_url)
    env.update(DAILY_API_KEY=emulator.api_key, DAILY_API_URL=emulator.base_url)
    env["DAILY_WEBHOOK_SECRET"] = "not base64 at all!"
    calls_before = emulator.introspect("requests")["total"]
    runs_before = asyncio.run(flow_runs())
    done = daily_sip("run", "good.yaml", env=env, cwd=files)
    assert_one_line(done, 2, "DAILY_WEBHOOK_SECRET", "not valid base64")
    assert "not base64 at all" not in done.stderr + done.stdout  # the secret is never echoed
    assert emulator.introspect("requests")["total"] == calls_before
    assert asyncio.run(flow_runs()) == runs_before


def test_run_exits_3_when_what_it_turned_on_is_still_on(capsys):
    from datetime import UTC, datetime

    from prefect.states import Failed

    from daily_sip.cli import CLEANUP_PENDING_EXIT, _finish
    from daily_sip.flows.report.model import CampaignReport, TargetResult

    report = CampaignReport(
        campaign="pending",
        started_at=datetime.now(UTC),
        targets=[TargetResult(index=0, sip_uri="sip:a@b.example.com", status="answered")],
        required=1,
        cleanup_pending=["delete room pending-1 (HTTP 500)"],
    )
    assert not report.success and "left for the sweeper: delete room pending-1" in report.message
    assert (
        _finish(Failed(message=report.message, data=report), report, None, None) == CLEANUP_PENDING_EXIT == 3
    )
    assert "Cleanup still pending" in capsys.readouterr().out
