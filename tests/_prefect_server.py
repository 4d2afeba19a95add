"""pytest plugin: one real Prefect server per pytest session, started only if a test asks for it.

Register with ``pytest_plugins = ["tests._prefect_server"]`` in tests/conftest.py.

``prefect_server`` (session scope) runs ``prefect server start --host 127.0.0.1 --port <free>``
as a subprocess with a temporary ``PREFECT_HOME`` (fresh SQLite database), analytics off and the
UI left at its default, waits for ``GET /api/health`` (up to ``PREFECT_TEST_SERVER_TIMEOUT``
seconds, default 120), then points this process and its children at it: ``PREFECT_API_URL`` is
set in ``os.environ`` and Prefect's process-global settings context is rebuilt so in-process
clients (``get_client()``, ``emit_event``, subscribers) use it too. Everything is restored and the
server stopped (SIGTERM to its process group, then SIGKILL) at session end.

The startup time is kept on the fixture value (``.startup_seconds``), printed to stderr when the
server is up, and repeated in the terminal summary.

PYTEST_DONT_REWRITE (no asserts here; lets it be imported by --doctest-modules first without a
PytestAssertRewriteWarning when it is registered afterwards)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

_STARTUPS: list[float] = []


@dataclass
class PrefectServer:
    api_url: str  # http://127.0.0.1:PORT/api
    ui_url: str  # http://127.0.0.1:PORT
    port: int
    home: Path
    log_path: Path
    startup_seconds: float
    proc: subprocess.Popen = field(repr=False)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prefect_command() -> list[str]:
    exe = Path(sys.executable).with_name("prefect")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "prefect"]


def _healthy(api_url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: only the server and its children
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _refresh_prefect_settings() -> None:
    """Make an already-imported Prefect re-read PREFECT_* from the environment."""
    if "prefect.context" in sys.modules:
        import prefect.context

        prefect.context.refresh_global_settings_context()


def start_prefect_server(timeout: float | None = None) -> PrefectServer:
    timeout = timeout or float(os.environ.get("PREFECT_TEST_SERVER_TIMEOUT", "120"))
    home = Path(tempfile.mkdtemp(prefix="prefect-test-home-"))
    log_path = home / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") or k == "PREFECT_UI_ENABLED"}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PYTHONUNBUFFERED="1",
    )
    last_error = ""
    for _attempt in range(3):  # a free port can be taken between probe and bind
        port = _free_port()
        api_url = f"http://127.0.0.1:{port}/api"
        # The UI asks the server where its API is; without this it is told 127.0.0.1:4200.
        env["PREFECT_UI_API_URL"] = api_url
        started = time.perf_counter()
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [*_prefect_command(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=home,
                start_new_session=True,
            )
        deadline = started + timeout
        while time.perf_counter() < deadline and proc.poll() is None:
            if _healthy(api_url):
                elapsed = time.perf_counter() - started
                return PrefectServer(
                    api_url=api_url,
                    ui_url=f"http://127.0.0.1:{port}",
                    port=port,
                    home=home,
                    log_path=log_path,
                    startup_seconds=elapsed,
                    proc=proc,
                )
            time.sleep(0.25)
        _stop(proc)
        last_error = log_path.read_text(errors="replace")[-3000:]
        if "address already in use" not in last_error.lower():
            break
    shutil.rmtree(home, ignore_errors=True)
    raise RuntimeError(f"prefect server did not become healthy within {timeout:.0f} s:\n{last_error}")


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[PrefectServer]:
    server = start_prefect_server()
    _STARTUPS.append(server.startup_seconds)
    print(
        f"\n[prefect_server] healthy after {server.startup_seconds:.1f} s at {server.api_url}",
        file=sys.stderr,
        flush=True,
    )
    saved = {k: os.environ.get(k) for k in ("PREFECT_API_URL",)}
    os.environ["PREFECT_API_URL"] = server.api_url
    _refresh_prefect_settings()
    try:
        yield server
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _refresh_prefect_settings()
        _stop(server.proc)
        shutil.rmtree(server.home, ignore_errors=True)


def pytest_terminal_summary(terminalreporter) -> None:
    for seconds in _STARTUPS:
        terminalreporter.write_line(f"prefect_server: fresh server healthy after {seconds:.1f} s")
