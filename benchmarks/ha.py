"""Pieces of the several-server setup (docs/ha.md): Redis and a health-checking haproxy.

Debian's ``redis-server`` and ``haproxy`` (``apt-get install -y redis-server haproxy``; .ci/run
does it), each a private process on free ports under a temp dir, stopped and removed by ``stop``.
Used by ``benchmarks/fleet.py --servers N`` and the pacer tests.

Example:
    ```python
    redis = Redis.start()                 # redis://127.0.0.1:<port>/0, append-only file on
    lb = Haproxy.start({"api": ["http://127.0.0.1:4201", "http://127.0.0.1:4202"]}, "/api/health")
    lb.url("api")                         # http://127.0.0.1:<port>
    lb.stop(); redis.stop()
    ```
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def missing() -> str | None:
    """Why the several-server setup cannot run here, or None."""
    absent = [name for name in ("redis-server", "haproxy") if not shutil.which(name)]
    if absent:
        return (
            f"{' and '.join(absent)} not installed (apt-get install -y redis-server haproxy; .ci/run does it)"
        )
    return None


def _wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not listening on {port} after {timeout:.0f} s")


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Redis:
    """``redis-server`` with an append-only file fsynced on every write: a restart keeps the
    pacer's book and Prefect's messages (``appendfsync always``; its cost is in docs/ha.md)."""

    root: Path
    port: int
    proc: subprocess.Popen | None = None
    track: list[subprocess.Popen] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls, under: Path | None = None, track: list[subprocess.Popen] | None = None) -> Redis:
        """``under``: the parent of its temp dir; ``track``: every process it starts is appended
        (a caller that stops a list of processes on every exit path stops these too)."""
        redis = cls(Path(tempfile.mkdtemp(prefix="ha-redis-", dir=under)), _free_port(), track=track)
        redis._spawn()
        return redis

    def _spawn(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.root),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--logfile",
                str(self.root / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        if self.track is not None:
            self.track.append(self.proc)
        _wait_port(self.port, self.proc, "redis-server")

    def restart(self, kill: bool = False) -> float:
        """Stop (SIGTERM, or SIGKILL with ``kill``) and start again on the same port; seconds down."""
        started = time.monotonic()
        if kill and self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        _stop(self.proc)
        self._spawn()
        return time.monotonic() - started

    def stop(self) -> None:
        _stop(self.proc)
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Haproxy:
    """haproxy in front of named groups of HTTP servers, round robin, each checked every 500 ms
    with ``GET <check>`` (a server that fails 2 checks is out until it passes 2); a request
    whose server refused the connection is sent to another one (``retries`` + ``redispatch``)."""

    root: Path
    ports: dict[str, int]
    proc: subprocess.Popen | None = None
    backends: dict[str, list[str]] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @classmethod
    def start(
        cls,
        backends: dict[str, list[str]],
        checks: dict[str, str],
        under: Path | None = None,
        track: list[subprocess.Popen] | None = None,
    ) -> Haproxy:
        root = Path(tempfile.mkdtemp(prefix="ha-haproxy-", dir=under))
        lb = cls(root, {name: _free_port() for name in backends})
        lb.backends = backends
        lines = [
            "global",
            "  maxconn 8000",  # two descriptors each: within a 20,000 file limit
            "defaults",
            "  mode http",
            "  timeout connect 2s",
            # Above the pacer's longest hold (25 s) and Prefect's long requests.
            "  timeout client 120s",
            "  timeout server 120s",
            "  retries 3",
            "  option redispatch 1",
            # Only a refused connection is retried elsewhere: that server never saw the request.
            "  retry-on conn-failure",
        ]
        for name, servers in backends.items():
            lines += [
                f"frontend {name}_in",
                f"  bind 127.0.0.1:{lb.ports[name]}",
                f"  default_backend {name}",
                f"backend {name}",
                "  balance roundrobin",
                f"  option httpchk GET {checks[name]}",
                "  default-server inter 500ms fall 2 rise 2",
            ]
            for i, server in enumerate(servers):
                hostport = server.split("://", 1)[1].split("/", 1)[0]
                lines.append(f"  server {name}{i} {hostport} check")
        config = lb.root / "haproxy.cfg"
        config.write_text("\n".join(lines) + "\n")
        lb.proc = subprocess.Popen(
            ["haproxy", "-db", "-f", str(config)],
            stdout=(lb.root / "haproxy.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if track is not None:
            track.append(lb.proc)
        for port in lb.ports.values():
            _wait_port(port, lb.proc, "haproxy")
        return lb

    def stop(self) -> None:
        _stop(self.proc)
        shutil.rmtree(self.root, ignore_errors=True)
