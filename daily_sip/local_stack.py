"""Starting the embedded defaults as real local processes: Prefect server, Daily stand-in, receiver.

Used by ``daily-sip demo`` and the benchmarks; everything binds to 127.0.0.1 and is stopped by
:meth:`LocalStack.close` (also on Ctrl-C). No Prefect import here: the caller sets
``PREFECT_API_URL`` from :meth:`LocalStack.prefect_server` before importing Prefect.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

STANDIN_DEV_KEY = "daily-standin-dev-key"


def free_port(preferred: int | None = None) -> int:
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port on 127.0.0.1")


def new_webhook_secret() -> str:
    """A base64 HMAC secret, the form Daily expects."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _drain(stream) -> None:
    for _ in stream:
        pass


def _bin(name: str) -> str:
    exe = Path(sys.executable).with_name(name)
    return str(exe) if exe.exists() else name


@dataclass
class LocalStack:
    """Processes started for one demo / benchmark run, stopped together."""

    workdir: Path = field(default_factory=lambda: Path(".prefect-demo"))
    procs: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.workdir / f"{name}.log"
        self.logs.append(log)
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=log.open("w"),
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def _first_line_url(self, name: str, proc: subprocess.Popen, timeout: float = 30) -> str:
        line = proc.stdout.readline().strip() if proc.stdout else ""
        if not line.startswith("http"):
            log = (self.workdir / f"{name}.log").read_text(errors="replace")[-1500:]
            raise RuntimeError(f"{name} did not start: {line!r}\n{log}")
        # Keep reading what follows: a pipe nobody reads fills up (64 KiB) and blocks the child.
        threading.Thread(target=_drain, args=(proc.stdout,), daemon=True).start()
        return line

    def prefect_server(self, port: int | None = None, timeout: float = 120) -> tuple[str, str, float]:
        """Start ``prefect server`` on SQLite under the workdir; returns (api_url, ui_url, seconds)."""
        port = free_port(port or 4200)
        home = (self.workdir / "prefect-home").resolve()
        home.mkdir(parents=True, exist_ok=True)
        env = {
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_API_URL": "",
            # The UI asks the server where its API is; unset, it answers port 4200 whatever the port.
            "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api",
        }
        started = time.monotonic()
        proc = self._spawn(
            "prefect-server",
            [_bin("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env,
        )
        api_url, ui_url = f"http://127.0.0.1:{port}/api", f"http://127.0.0.1:{port}"
        while time.monotonic() - started < timeout:  # a poll: wait for the server to come up
            if proc.poll() is not None:
                raise RuntimeError("prefect server exited:\n" + self.logs[-1].read_text()[-1500:])
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                    return api_url, ui_url, time.monotonic() - started
            time.sleep(0.5)
        raise RuntimeError(f"prefect server not healthy after {timeout:.0f} s")

    def standin(self, api_key: str = STANDIN_DEV_KEY, **flags: object) -> str:
        """Start the offline Daily stand-in; returns its base URL (``http://127.0.0.1:PORT/v1``)."""
        args = [
            sys.executable,
            "-m",
            "daily_sip.standin",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--api-key",
            api_key,
        ]
        for key, value in flags.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        return self._first_line_url("standin", self._spawn("standin", args))

    def receiver(self, secret: str, prefect_api_url: str, spool: bool = False) -> str:
        """Start the webhook receiver; returns its webhook URL.

        ``spool``: answer Daily once an event is in a journal under the workdir, as production should
        (see the receiver's ``--spool-dir``).
        """
        args = [sys.executable, "-m", "daily_sip.receiver", "--port", "0"]
        if spool:
            args += ["--spool-dir", str((self.workdir / "receiver-spool").resolve())]
        proc = self._spawn(
            "receiver", args, {"DAILY_WEBHOOK_SECRET": secret, "PREFECT_API_URL": prefect_api_url}
        )
        return self._first_line_url("receiver", proc)

    def worker(self, pool: str, env: dict[str, str]) -> subprocess.Popen:
        """Start ``prefect worker start --pool POOL`` (output in the workdir's worker.log)."""
        proc = self._spawn("worker", [_bin("prefect"), "worker", "start", "--pool", pool], env)
        threading.Thread(target=_drain, args=(proc.stdout,), daemon=True).start()  # a full pipe blocks it
        return proc

    def pacer(self) -> str:
        """Start the shared pacer (`daily_sip.pacer`); returns its base URL for ``DAILY_PACER_URL``."""
        proc = self._spawn("pacer", [sys.executable, "-m", "daily_sip.pacer", "--port", "0"])
        return self._first_line_url("pacer", proc)

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
