"""The top of the hour: M campaigns x K targets at once, on Prefect's scale-out setup.

Starts a private PostgreSQL cluster (Debian's ``postgresql`` package), a Prefect server on it,
the Daily stand-in at Daily's real limits, the webhook receiver, the shared pacer and W
``process`` workers; deploys ``dial-campaign/adhoc``, submits M runs at once and waits for
them. Prints campaigns succeeded, makespan against the rate-limit bound, the 429s the stand-in
answered, CPU per dial (campaign processes, Prefect server, PostgreSQL, workers), peak RSS per
campaign process, webhook->flow latency, and what was left on the stand-in.

    .venv/bin/python benchmarks/fleet.py --campaigns 20 --targets 5 --workers 2
    .venv/bin/python benchmarks/fleet.py --campaigns 20 --rate-scale 10   # Daily's limits x10

CPU figures are process CPU time (``/proc``), which contention does not inflate the way it
inflates wall time. Run as root, PostgreSQL runs as the ``postgres`` user (it refuses root).
Everything started is stopped on every exit path.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import glob
import json
import logging
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

import httpx

from daily_sip.local_stack import STANDIN_DEV_KEY, LocalStack, _drain, free_port, new_webhook_secret

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.ha import Haproxy, Redis, missing

POOL = "fleet"
HOLD_SECONDS = 2.0
TICKS = os.sysconf("SC_CLK_TCK")
RESOURCES = re.compile(
    r"resources: ([\d.]+) s CPU in this run, ([\d.]+) s in its process, "
    r"peak RSS (\d+) MB"
)
LATENCY = re.compile(r"webhook->flow latency p50 ([\d.]+) s, p95 ([\d.]+) s")


# -- processes ---------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float, float] | None:
    """(ppid, own CPU s, CPU s of waited-for children) from /proc/<pid>/stat."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    ppid, utime, stime, cutime, cstime = int(fields[1]), *map(int, fields[11:15])
    return ppid, (utime + stime) / TICKS, (cutime + cstime) / TICKS


def tree_cpu(root: int) -> float:
    """CPU seconds of a process and its descendants, live or already reaped."""
    stats = {int(p): s for p in os.listdir("/proc") if p.isdigit() and (s := _stat(int(p)))}
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        if pid in stats:
            total += stats[pid][1] + stats[pid][2]
            stack += [child for child, s in stats.items() if s[0] == pid]
    return total


def _tree(root: int) -> list[int]:
    """A process and its live descendants."""
    parents = {int(p): s[0] for p in os.listdir("/proc") if p.isdigit() and (s := _stat(int(p)))}
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        if pid in parents:
            found.append(pid)
            stack += [child for child, parent in parents.items() if parent == pid]
    return found


def tree_peak_rss_mb(root: int) -> float:
    """Sum of the peak RSS (VmHWM) of a process and its live descendants, MB; 0 for pid 0.

    Shared pages (PostgreSQL's shared buffers, say) count once per process that touched them,
    and descendants that already exited are not seen: an upper bound for what is live, no more.
    """
    if not root:
        return 0.0
    total = 0
    for pid in _tree(root):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return round(total / 1024, 1)


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@dataclass
class Postgres:
    """A private cluster on a free port under a temp dir; ``stop`` removes it."""

    root: Path
    port: int
    as_user: list[str] = field(default_factory=list)
    pid: int = 0

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/prefect"

    def _run(self, *cmd: str) -> None:
        subprocess.run([*self.as_user, *cmd], check=True, capture_output=True, text=True, timeout=120)

    @classmethod
    def start(cls) -> Postgres:
        initdb, pg_ctl, psql = _pg_bin("initdb"), _pg_bin("pg_ctl"), _pg_bin("psql")
        if not (initdb and pg_ctl and psql):
            raise SystemExit("PostgreSQL is not installed: apt-get update && apt-get install -y postgresql")
        root = Path(tempfile.mkdtemp(prefix="fleet-pg-"))
        as_user: list[str] = []
        if os.geteuid() == 0:  # postgres refuses to run as root
            shutil.chown(root, "postgres", "postgres")
            as_user = ["runuser", "-u", "postgres", "--"]
        pg = cls(root, free_port(), as_user)
        data = root / "data"
        pg._run(initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        options = f"-p {pg.port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=300"
        pg._run(pg_ctl, "-D", str(data), "-l", str(root / "postgres.log"), "-o", options, "-w", "start")
        pg.pid = int((data / "postmaster.pid").read_text().split()[0])
        pg._run(
            psql,
            "-h",
            "127.0.0.1",
            "-p",
            str(pg.port),
            "-U",
            "postgres",
            "-q",
            "-c",
            "CREATE DATABASE prefect",
        )
        return pg

    def query(self, sql: str) -> list[list[str]]:
        """Rows of ``sql`` on the prefect database, as text."""
        psql = [_pg_bin("psql") or "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        out = subprocess.run(
            [*self.as_user, *psql, "-d", "prefect", "-At", "-F", "\t", "-c", sql],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def restart(self) -> float:
        """Stop at once (``pg_ctl -m immediate``: no shutdown checkpoint, crash recovery at the
        next start, as after a kill -9) and start again on the same port; seconds down."""
        pg_ctl, data = _pg_bin("pg_ctl") or "pg_ctl", str(self.root / "data")
        started = time.monotonic()
        self._run(pg_ctl, "-D", data, "-m", "immediate", "-w", "stop")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=300"
        self._run(pg_ctl, "-D", data, "-l", str(self.root / "postgres.log"), "-o", options, "-w", "start")
        self.pid = int((self.root / "data" / "postmaster.pid").read_text().split()[0])
        return time.monotonic() - started

    def stop(self) -> None:
        if not self.root.exists():  # stopped already (before the peer ran)
            return
        with contextlib.suppress(Exception):
            self._run(
                _pg_bin("pg_ctl") or "pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop"
            )
        shutil.rmtree(self.root, ignore_errors=True)


def table_writes(pg: Postgres) -> dict[str, int]:
    """Rows inserted + updated + deleted so far, by table of the Prefect database."""
    rows = pg.query("SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables")
    return {name: int(n) for name, n in rows}


def db_footprint(pg: Postgres, before: dict[str, int], campaigns: int) -> dict:
    """What the fleet made the Prefect server write, per campaign: where its CPU goes."""
    after = table_writes(pg)
    per_table = {
        t: round((n - before.get(t, 0)) / campaigns, 1) for t, n in after.items() if n - before.get(t, 0) > 0
    }
    events = pg.query("SELECT event, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC")
    return {
        "row_writes_per_campaign": dict(sorted(per_table.items(), key=lambda kv: -kv[1])),
        "events_per_campaign": {name: round(int(n) / campaigns, 1) for name, n in events[:25]},
    }


ROUTES: collections.Counter[str] = collections.Counter()
_ACCESS = re.compile(r'"(GET|POST|PATCH|PUT|DELETE) (/api/[^ ?]*)[^"]*" (\d{3})')
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_ID = re.compile(rf"/{_UUID}|/fleet-[\w-]+|/daily-[\w.-]+")


def _count_routes(stream: IO[str]) -> None:
    """Count the server's access-log lines by method and route (ids folded)."""
    for line in stream:
        m = _ACCESS.search(line)
        if m:
            ROUTES[f"{m[1]} {_ID.sub('/{id}', m[2])} {m[3]}"] += 1


def start_prefect_server(
    stack: LocalStack, pg: Postgres, timeout: float = 180, count_requests: bool = False
) -> tuple[str, int]:
    port = free_port()
    home = stack.workdir / "prefect-home"  # removed with the workdir
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": "",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": pg.url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        # The default pool (5 + 10 overflow) runs dry when 100 runs are submitted at once:
        # requests then wait 30 s for a connection and fail with 500.
        "PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE": "20",
        "PREFECT_SERVER_DATABASE_SQLALCHEMY_MAX_OVERFLOW": "30",
        # Access lines are only logged to be counted (--count-requests): they cost server CPU.
        **({"PREFECT_SERVER_LOGGING_LEVEL": "INFO"} if count_requests else {}),
    }
    proc = stack._spawn(
        "prefect-server",
        [
            str(Path(sys.executable).with_name("prefect")),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env,
    )
    # Its stdout is a pipe; keep reading it, or a full pipe (64 KiB) blocks the server.
    if count_requests:
        threading.Thread(target=_count_routes, args=(proc.stdout,), daemon=True).start()
    else:
        threading.Thread(target=_drain, args=(proc.stdout,), daemon=True).start()
    api_url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("prefect server exited:\n" + stack.logs[-1].read_text()[-2000:])
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return api_url, proc.pid
        time.sleep(0.5)
    raise RuntimeError(f"prefect server not healthy after {timeout:.0f} s")


def prefect_ha_env(pg: Postgres, redis: Redis, home: Path) -> dict[str, str]:
    """Prefect's settings for several API servers (docs.prefect.io/v3/advanced/self-hosted):
    events, caches, ordering and concurrency leases in Redis (``prefect-redis``), background
    services coordinated through Docket on Redis, migrations run once, not by each server."""
    host, port = redis.url.removeprefix("redis://").split("/")[0].split(":")
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": "",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": pg.url,
        "PREFECT_API_DATABASE_MIGRATE_ON_START": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE": "20",
        "PREFECT_SERVER_DATABASE_SQLALCHEMY_MAX_OVERFLOW": "30",
        "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
        "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_REDIS_MESSAGING_HOST": host,
        "PREFECT_REDIS_MESSAGING_PORT": port,
        "PREFECT_REDIS_MESSAGING_DB": "0",
        "PREFECT_SERVER_DOCKET_URL": f"redis://{host}:{port}/1",
    }


def _copy(stream: object, path: Path) -> None:
    """Keep reading a child's stdout (a full pipe blocks it) into a file beside its log."""
    with path.open("w") as out:
        for line in stream:  # type: ignore[attr-defined]
            out.write(line)
            out.flush()


@dataclass
class HA:
    """The several-server setup: Redis, N API servers, their services once, haproxy in front."""

    redis: Redis
    lb: Haproxy
    servers: list[subprocess.Popen]
    services: subprocess.Popen
    pacers: list[subprocess.Popen] = field(default_factory=list)


def start_prefect_ha(stack: LocalStack, pg: Postgres, n: int, timeout: float = 240) -> tuple[str, HA]:
    """PostgreSQL migrated once, Redis, ``n`` API servers (``prefect server start --no-services``),
    one ``prefect server services start``, haproxy checking ``/api/health``; returns the
    balancer's API URL. Every process is in ``stack.procs``, every file under its workdir."""
    if why := missing():
        raise SystemExit(f"--servers needs {why}")
    prefect = str(Path(sys.executable).with_name("prefect"))
    redis = Redis.start(stack.workdir, stack.procs)
    home = stack.workdir / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **prefect_ha_env(pg, redis, home)}
    subprocess.run(
        [prefect, "server", "database", "upgrade", "-y"],
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    ports = [free_port() for _ in range(n)]
    servers: list[subprocess.Popen] = []
    deadline = time.monotonic() + timeout

    def healthy(port: int, proc: subprocess.Popen) -> None:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prefect server on {port} exited (see its log in {stack.workdir})")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"prefect server on {port} not healthy after {timeout:.0f} s")
            time.sleep(0.5)

    # The first server registers Prefect's block types; several at once race on it (a unique-key
    # error ends the loser), so the others start once it is up.
    for i, port in enumerate(ports):
        cmd = [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-services"]
        proc = stack._spawn(f"prefect-server-{i}", cmd, prefect_ha_env(pg, redis, home))
        threading.Thread(
            target=_copy, args=(proc.stdout, stack.workdir / f"prefect-server-{i}.out"), daemon=True
        ).start()
        servers.append(proc)
        if i == 0:
            healthy(port, proc)
    services = stack._spawn(
        "prefect-services", [prefect, "server", "services", "start"], prefect_ha_env(pg, redis, home)
    )
    threading.Thread(
        target=_copy, args=(services.stdout, stack.workdir / "prefect-services.out"), daemon=True
    ).start()
    for port, proc in zip(ports, servers, strict=True):
        healthy(port, proc)
    lb = Haproxy.start(
        {"api": [f"http://127.0.0.1:{p}" for p in ports]}, {"api": "/api/health"}, stack.workdir, stack.procs
    )
    time.sleep(1.5)  # two passed checks (500 ms apart) bring a server in
    return f"{lb.url('api')}/api", HA(redis, lb, servers, services)


# -- the run -----------------------------------------------------------------------------------


def campaign(index: int, targets: int) -> dict:
    return {
        "name": f"fleet-{index:03d}",
        "targets": [{"sip_uri": f"sip:bridge-{index:03d}-{t}@fleet.example.com"} for t in range(targets)],
        "after_answer": {"mode": "hang_up_after", "hold_seconds": HOLD_SECONDS},
        "ring_timeout_seconds": 30,
        "deadline_seconds": 3600,
    }


async def deploy(webhook_url: str, daily_url: str, secret: str, pool_type: str) -> str:
    from daily_sip.deployments.definitions import by_name
    from daily_sip.deployments.serve import build_deployment
    from daily_sip.deployments.setup import run_setup

    await run_setup(
        api_key=STANDIN_DEV_KEY,
        api_url=daily_url,
        webhook_secret=secret,
        webhook_url=webhook_url,
        work_pool=POOL,
        work_pool_type=pool_type,
    )
    (adhoc,) = by_name(["adhoc"])
    deployment = await build_deployment(adhoc, webhook_url=webhook_url)
    await deployment.apply(work_pool_name=POOL)
    return f"{deployment.flow_name}/{deployment.name}"


async def submit(name: str, campaigns: list[dict], at_once: int = 10) -> list[str]:
    """Create one run per campaign, ``at_once`` requests at a time; an API error is retried."""
    from prefect.deployments import run_deployment

    gate = asyncio.Semaphore(at_once)

    async def one(c: dict) -> str:
        for attempt in range(5):
            async with gate:
                try:
                    return str((await run_deployment(name, parameters={"campaign": c}, timeout=0)).id)
                except Exception as exc:  # 500/503 from a busy server: say so, try again
                    print(
                        f"  submitting {c['name']} failed ({type(exc).__name__}: {str(exc)[:100]}); "
                        f"attempt {attempt + 1} of 5"
                    )
            await asyncio.sleep(2**attempt)
        raise RuntimeError(f"could not submit {c['name']}")

    return list(await asyncio.gather(*(one(c) for c in campaigns)))


async def wait_for(
    run_ids: list[str], name: str, campaigns: dict[str, dict], give_up_after: float
) -> tuple[dict[str, object], int]:
    """Wait until every run is final; a run that could not be submitted is submitted again."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    resubmitted = api_errors = 0
    deadline = time.monotonic() + give_up_after
    async with get_client() as client:
        while True:
            try:
                runs = await client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(run_ids))), limit=len(run_ids)
                )
            except Exception as exc:  # an overloaded server answers 500/503: say so, ask again
                print(f"  reading the runs failed ({type(exc).__name__}: {str(exc)[:120]}); retrying")
                api_errors += 1
                await asyncio.sleep(5)
                continue
            by_id = {str(r.id): r for r in runs}
            for rid, run in list(by_id.items()):
                message = (run.state.message or "") if run.state else ""
                if run.state and run.state.is_crashed() and "submit" in message.lower():
                    print(f"  run {rid} could not be submitted ({message[:120]}); submitting it again")
                    (new,) = await submit(name, [campaigns[rid]])
                    campaigns[new] = campaigns.pop(rid)
                    run_ids[run_ids.index(rid)] = new
                    resubmitted += 1
            if len(by_id) == len(run_ids) and all(r.state and r.state.is_final() for r in by_id.values()):
                return by_id, resubmitted
            if time.monotonic() > deadline:
                return by_id, resubmitted
            await asyncio.sleep(5)


async def run_logs(run_ids: list[str], detailed: bool = False) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    messages: list[str] = []
    async with get_client() as client:
        for i in range(0, len(run_ids), 20):
            offset = 0
            while True:
                page = await client.read_logs(
                    LogFilter(flow_run_id=LogFilterFlowRunId(any_=run_ids[i : i + 20])),
                    limit=200,
                    offset=offset,
                )
                messages += [
                    f"{log.timestamp:%H:%M:%S.%f} {logging.getLevelName(log.level)} {log.message}"
                    if detailed
                    else log.message
                    for log in page
                ]
                if len(page) < 200:
                    break
                offset += 200
    return messages


def webhook_delays(events: list[dict], deliveries: list[dict]) -> dict:
    """How long Daily's side (the stand-in) held events before the receiver took them.

    The envelope's ``event_ts`` is when a webhook is *sent*, so the flow's latency figure cannot
    see time an event spent queued behind other deliveries (one ordered worker per webhook, as
    Daily sends); this is event creation -> first successful delivery, and the receiver's answer
    time per delivery, from the stand-in's own logs.
    """
    created = {
        e["id"]: datetime.fromisoformat(e["created_at"].replace("Z", "+00:00")).timestamp() for e in events
    }
    first_ok: dict[str, float] = {}
    answer_ms: list[float] = []
    for d in deliveries:
        if d.get("kind") != "event":
            continue
        if d.get("duration_ms") is not None:
            answer_ms.append(d["duration_ms"])
        if d.get("result") == "ok" and d["event_id"] not in first_ok:
            first_ok[d["event_id"]] = d["ts"] + (d.get("duration_ms") or 0) / 1000
    lags = [first_ok[i] - created[i] for i in first_ok if i in created]
    # Types the webhook subscribed to are those delivered at least once; others never go out.
    sent_types = {d["event_type"] for d in deliveries if d.get("kind") == "event"}
    never = [e for e in events if e["type"] in sent_types and e["id"] not in first_ok]
    return {
        "events": sum(1 for e in events if e["type"] in sent_types),
        "delivered": len(first_ok),
        "never_delivered": len(never),
        "failed_attempts": sum(
            1 for d in deliveries if d.get("kind") == "event" and d.get("result") == "failed"
        ),
        "created_to_delivered_s": {
            "p50": round(_pct(lags, 0.5), 3),
            "p95": round(_pct(lags, 0.95), 3),
            "max": round(max(lags), 3) if lags else None,
        },
        "receiver_answer_ms": {"p50": round(_pct(answer_ms, 0.5), 1), "p95": round(_pct(answer_ms, 0.95), 1)},
    }


def bound_seconds(dials: int, rate_scale: float) -> float:
    """The time Daily's call-start limit alone needs for ``dials`` starts: 5 per 5 s, x scale."""
    return dials / (1.0 * rate_scale)


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


@dataclass
class Fleet:
    stack: LocalStack
    pg: Postgres
    server_pid: int
    daily_root: str
    pacer_url: str
    deployment: str
    workers: list[subprocess.Popen]
    # The other components, for their CPU and RSS (0: not started).
    standin_pid: int = 0
    receiver_pid: int = 0
    pacer_pid: int = 0
    ha: HA | None = None
    # CPU of processes killed by a fault, read just before the kill (their /proc is gone after).
    dead_cpu: dict[str, float] = field(default_factory=dict)


def server_pids(f: Fleet) -> list[int]:
    """Every Prefect server process: the one server, or the API servers and their services."""
    if f.ha is None:
        return [f.server_pid]
    return [p.pid for p in f.ha.servers] + [f.ha.services.pid]


def pacer_pids(f: Fleet) -> list[int]:
    return [p.pid for p in f.ha.pacers] if f.ha is not None else [f.pacer_pid] if f.pacer_pid else []


def servers_cpu(f: Fleet) -> float:
    return sum(tree_cpu(pid) for pid in server_pids(f)) + f.dead_cpu.get("server", 0.0)


def postgres_cpu(f: Fleet) -> float:
    return tree_cpu(f.pg.pid) + f.dead_cpu.get("postgres", 0.0)


def start_fleet(args: argparse.Namespace, stack: LocalStack, pg: Postgres) -> Fleet:
    t0 = time.monotonic()
    ha: HA | None = None
    if args.servers:
        api_url, ha = start_prefect_ha(stack, pg, args.servers)
        server_pid = ha.servers[0].pid
        print(
            f"{args.servers} prefect API servers + services on PostgreSQL and Redis, behind haproxy, "
            f"healthy after {time.monotonic() - t0:.1f} s"
        )
    else:
        api_url, server_pid = start_prefect_server(stack, pg, count_requests=args.count_requests)
        print(f"prefect server on PostgreSQL healthy after {time.monotonic() - t0:.1f} s (pid {server_pid})")
    os.environ.update(PREFECT_API_URL=api_url, PREFECT_LOGGING_LEVEL="WARNING")
    secret = new_webhook_secret()
    daily_url = stack.standin(rate_limit_scale=args.rate_scale)
    standin_pid = stack.procs[-1].pid
    # The receiver answers Daily once an event is on disk (see daily_sip/receiver/spool.py).
    os.environ["DAILY_RECEIVER_SPOOL_DIR"] = str(stack.workdir / "receiver-spool")
    webhook_url = stack.receiver(secret, api_url)
    receiver_pid = stack.procs[-1].pid
    if ha is not None:  # pacers sharing one book in Redis; campaigns know them all
        urls = []
        for i in range(args.pacers):
            cmd = [sys.executable, "-m", "daily_sip.pacer", "--port", "0", "--redis-url", ha.redis.url]
            proc = stack._spawn(f"pacer-{i}", cmd)
            urls.append(stack._first_line_url(f"pacer-{i}", proc))
            ha.pacers.append(proc)
        pacer_url, pacer_pid = ",".join(urls), ha.pacers[0].pid
    else:
        pacer_url = stack.pacer() if hasattr(stack, "pacer") else ""  # absent in code before the pacer
        pacer_pid = stack.procs[-1].pid if pacer_url else 0
    print(f"stand-in, receiver, pacer up after {time.monotonic() - t0:.1f} s")
    os.environ["DAILY_PACER_URL"] = pacer_url  # setup's own Daily calls share the account's windows
    from daily_sip.worker import WORKER_TYPE  # imports Prefect: only once PREFECT_API_URL is set

    pool_type = WORKER_TYPE if args.worker_type == "in-process" else "process"
    name = asyncio.run(deploy(webhook_url, daily_url, secret, pool_type))
    print(f"deployed after {time.monotonic() - t0:.1f} s")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAILY_")}
    # The workers know Daily only through the credentials block `daily-sip setup` saved.
    env.update(
        PREFECT_API_URL=api_url,
        DAILY_PACER_URL=pacer_url,
        DAILY_RATE_LIMIT_SCALE=str(args.rate_scale),
        PREFECT_WORKER_QUERY_SECONDS="2",
        PREFECT_LOGGING_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    workers = []
    for w in range(args.workers):
        if args.worker_type == "in-process":
            cmd = [
                str(Path(sys.executable).with_name("daily-sip")),
                "worker",
                "--pool",
                POOL,
                "--name",
                f"fleet-{w}",
            ]
        else:
            cmd = [
                str(Path(sys.executable).with_name("prefect")),
                "worker",
                "start",
                "--pool",
                POOL,
                "--type",
                "process",
                "--name",
                f"fleet-{w}",
            ]
        if args.limit_per_worker or (args.limit_per_worker == 0 and args.worker_type != "process"):
            cmd += ["--limit", str(args.limit_per_worker)]
        with (stack.workdir / f"worker-{w}.log").open("wb") as log:
            proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        stack.procs.append(proc)
        workers.append(proc)
    print("workers: pids " + " ".join(str(w.pid) for w in workers), flush=True)
    time.sleep(3)
    return Fleet(
        stack,
        pg,
        server_pid,
        daily_url.removesuffix("/v1"),
        pacer_url,
        name,
        workers,
        standin_pid,
        receiver_pid,
        pacer_pid,
        ha,
    )


def _side_cpu(f: Fleet) -> dict[str, float]:
    """CPU so far of the components fleet() did not measure at first (0 for one not started)."""
    return {
        "receiver": tree_cpu(f.receiver_pid) if f.receiver_pid else 0.0,
        "pacer": sum(tree_cpu(pid) for pid in pacer_pids(f)) + f.dead_cpu.get("pacer", 0.0),
        "standin": tree_cpu(f.standin_pid) if f.standin_pid else 0.0,
        "workers_tree": sum(tree_cpu(w.pid) for w in f.workers),
        "redis": (tree_cpu(f.ha.redis.proc.pid) if f.ha and f.ha.redis.proc else 0.0)
        + f.dead_cpu.get("redis", 0.0),
        "haproxy": tree_cpu(f.ha.lb.proc.pid) if f.ha and f.ha.lb.proc else 0.0,
    }


async def fleet(args: argparse.Namespace, f: Fleet) -> dict:
    name, workers, pg, server_pid, daily_root, pacer_url = (
        f.deployment,
        f.workers,
        f.pg,
        f.server_pid,
        f.daily_root,
        f.pacer_url,
    )
    specs = [campaign(i, args.targets) for i in range(args.campaigns)]
    dials = args.campaigns * args.targets
    # What the server and the database burn with nothing to do (services, worker polls), so the
    # per-dial figures can be read with and without it.
    idle0 = (servers_cpu(f), postgres_cpu(f), time.monotonic())
    await asyncio.sleep(args.idle_sample)
    idle = (
        (servers_cpu(f) - idle0[0]) / (time.monotonic() - idle0[2]),
        (postgres_cpu(f) - idle0[1]) / (time.monotonic() - idle0[2]),
    )
    cpu0 = {
        "server": servers_cpu(f),
        "postgres": postgres_cpu(f),
        "workers": sum(_stat(w.pid)[1] for w in workers),
        **_side_cpu(f),
    }
    writes0 = table_writes(pg)
    routes0 = collections.Counter(ROUTES)
    started, started_at = time.monotonic(), time.time()
    run_ids = await submit(name, specs)
    submitted = time.monotonic() - started
    by_campaign = dict(zip(run_ids, specs, strict=True))
    faulting = asyncio.ensure_future(inject_faults(args, f, dials))
    runs, resubmitted = await wait_for(run_ids, name, by_campaign, args.timeout)
    faults = await faulting if faulting.done() else []
    faulting.cancel()
    makespan = time.monotonic() - started
    print(f"all {len(runs)} runs final after {makespan:.1f} s")
    ends = [r.end_time for r in runs.values() if r.end_time]
    await asyncio.sleep(3)  # the workers reap their last runs: then their CPU is in cutime/cstime
    cpu1 = {"server": servers_cpu(f), "postgres": postgres_cpu(f), **_side_cpu(f)}
    side = {
        k: cpu1[k] - cpu0[k] for k in ("receiver", "pacer", "standin", "workers_tree", "redis", "haproxy")
    }
    rss = {
        "workers": sum(tree_peak_rss_mb(w.pid) for w in workers),
        "prefect_server": tree_peak_rss_mb(server_pid),
        "postgres": tree_peak_rss_mb(pg.pid),
        "receiver": tree_peak_rss_mb(f.receiver_pid),
        "pacer": tree_peak_rss_mb(f.pacer_pid),
    }
    worker_stats = [_stat(w.pid) for w in workers]
    worker_own = sum(s[1] for s in worker_stats if s)
    children = sum(s[2] for s in worker_stats if s)
    for w in workers:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(w.pid, signal.SIGTERM)
    logs = await run_logs(list(runs))
    failed = [rid for rid, r in runs.items() if r.state and not r.state.is_completed()]
    if failed and args.keep_logs:  # what a failed campaign said, beside the processes' logs
        with (f.stack.workdir / "failed-runs.log").open("w") as out:
            for rid in failed:
                out.write(f"== {by_campaign[rid]['name']} ({rid}): {runs[rid].state.message}\n")
                out.writelines(f"{line}\n" for line in await run_logs([rid], detailed=True))
    resources = [tuple(map(float, m.groups())) for m in map(RESOURCES.search, logs) if m]
    resubscribed = sum(1 for m in logs if "live event stream for room" in m)
    # Failures early in the run, while the other campaign processes still start up (imports
    # alone are seconds of CPU each), point at CPU starvation, not at a lost event.
    first_start = min((r.start_time for r in runs.values() if r.start_time), default=None)
    failed_at = sorted(
        round((r.start_time - first_start).total_seconds())
        for r in runs.values()
        if first_start and r.start_time and r.state and not r.state.is_completed()
    )
    latencies = [tuple(map(float, m.groups())) for m in map(LATENCY.search, logs) if m]
    async with httpx.AsyncClient(timeout=30) as http:
        requests = (await http.get(f"{daily_root}/_emulator/requests")).json()
        rooms = (await http.get(f"{daily_root}/_emulator/rooms")).json()
        legs = (await http.get(f"{daily_root}/_emulator/legs")).json()
        pacer = {}
        for url in pacer_url.split(",") if pacer_url else []:  # the first still up
            with contextlib.suppress(httpx.HTTPError, ValueError):
                pacer = (await http.get(f"{url}/healthz")).json()
                break
        events = (await http.get(f"{daily_root}/_emulator/events")).json()
        deliveries = (await http.get(f"{daily_root}/_emulator/deliveries")).json()
    webhooks = webhook_delays(events, deliveries)
    footprint = db_footprint(pg, writes0, args.campaigns)
    if args.count_requests:
        footprint["api_requests_per_campaign"] = {
            route: round(n / args.campaigns, 2) for route, n in (ROUTES - routes0).most_common(40)
        }
    states: dict[str, int] = {}
    for r in runs.values():
        states[r.state.name if r.state else "?"] = states.get(r.state.name if r.state else "?", 0) + 1
    bound = bound_seconds(dials, args.rate_scale)
    server_cpu = cpu1["server"] - cpu0["server"]
    pg_cpu = cpu1["postgres"] - cpu0["postgres"]
    return {
        "campaigns": args.campaigns,
        "targets": args.targets,
        "workers": args.workers,
        "worker_type": args.worker_type,
        "limit_per_worker": args.limit_per_worker,
        "rate_scale": args.rate_scale,
        "dials": dials,
        "succeeded": states.get("Completed", 0),
        "states": states,
        "not_completed": sorted(
            {(r.state.message or "")[:200] for r in runs.values() if r.state and not r.state.is_completed()}
        )[:5],
        "resubmitted": resubmitted,
        "not_completed_started_s_after_first": failed_at,
        "live_streams_reopened": resubscribed,
        "submit_seconds": round(submitted, 1),
        "makespan_seconds": round(makespan, 1),
        "bound_seconds": bound,
        "makespan_over_bound": round(makespan / bound, 3),
        # Submit -> the last run's own end time: without the up to 5 s of wait_for's polling.
        "makespan_to_last_end_seconds": round(max(e.timestamp() for e in ends) - started_at, 1)
        if ends
        else None,
        "last_end_to_first_start_seconds": round(
            (max(ends) - min(r.start_time for r in runs.values() if r.start_time)).total_seconds(), 1
        )
        if ends
        else None,
        "rate_limited_429": requests.get("rate_limited"),
        "dialout_starts": requests.get("by_route", {}).get("POST /rooms/{name}/dialOut/start"),
        "requests_by_route": requests.get("by_route", {}),
        "pacer": pacer.get("books"),
        "cpu_ms_per_dial": {
            # In-process workers run the campaigns themselves: their own CPU is the campaigns'.
            "campaign_processes_total": round(
                1000 * (children if args.worker_type == "process" else worker_own - cpu0["workers"]) / dials,
                1,
            ),
            # A run's own CPU is only separable when it has its process to itself.
            "campaign_runs_in_flow": round(1000 * sum(r[0] for r in resources) / dials, 1)
            if args.worker_type == "process"
            else None,
            "prefect_server": round(1000 * server_cpu / dials, 1),
            "prefect_server_net_of_idle": round(1000 * (server_cpu - idle[0] * makespan) / dials, 1),
            "postgres": round(1000 * pg_cpu / dials, 1),
            "workers_own": round(1000 * (worker_own - cpu0["workers"]) / dials, 1),
            # Each component once, its children included (the process tree under it, live or
            # reaped), over the same span as the rows above.
            "workers_with_runs": round(1000 * side["workers_tree"] / dials, 1),
            "receiver": round(1000 * side["receiver"] / dials, 1),
            "pacer": round(1000 * side["pacer"] / dials, 1),
            "redis": round(1000 * side["redis"] / dials, 1),
            "haproxy": round(1000 * side["haproxy"] / dials, 1),
            "project_total": round(
                1000
                * (
                    side["workers_tree"]
                    + side["receiver"]
                    + side["pacer"]
                    + side["redis"]
                    + side["haproxy"]
                    + server_cpu
                    + pg_cpu
                )
                / dials,
                1,
            ),
            "standin_not_counted": round(1000 * side["standin"] / dials, 1),
        },
        "peak_rss_mb_by_component": rss,
        "runs_reporting_resources": len(resources),
        "peak_rss_mb": {
            "median": statistics.median([r[2] for r in resources]) if resources else None,
            "max": max([r[2] for r in resources]) if resources else None,
        },
        "webhook_to_flow_latency_s": {
            "p50_median_of_runs": round(statistics.median([lat[0] for lat in latencies]), 3)
            if latencies
            else None,
            "p95_95th_of_runs": round(_pct([lat[1] for lat in latencies], 0.95), 3) if latencies else None,
        },
        "idle_cpu_per_second": {"prefect_server": round(idle[0], 3), "postgres": round(idle[1], 3)},
        "webhooks": webhooks,
        "prefect_database": footprint,
        "rooms_left": len(rooms),
        "legs_left_up": sum(1 for leg in legs if leg.get("active")),
        "servers": args.servers,
        "pacers": args.pacers if args.servers else 1,
        "faults": [{**fault, **_gap_after(legs, fault["at"], args.rate_scale)} for fault in faults],
    }


def _gap_after(legs: list[dict], at: float, rate_scale: float) -> dict:
    """Time the dialling lost to a fault: how much longer the dial starts after it took than
    Daily's bound for that many (5 per 5 s: one a second), and the longest pause between two."""
    starts = sorted(
        datetime.fromisoformat(leg["created_at"]).timestamp() for leg in legs if leg.get("created_at")
    )
    after = [t for t in starts if t >= at]
    before = [t for t in starts if t < at]
    gaps = [b - a for a, b in zip(([before[-1]] if before else []) + after, after, strict=False)]
    bound = bound_seconds(len(after), rate_scale) if after else 0.0
    return {
        "longest_dial_pause_after_s": round(max(gaps), 1) if gaps else None,
        "dials_after": len(after),
        "dialling_after_s": round(after[-1] - at, 1) if after else None,
        "bound_after_s": round(bound, 1),
    }


async def inject_faults(args: argparse.Namespace, f: Fleet, dials: int) -> list[dict]:
    """Once ``--fault-at`` of the dials have started: kill -9 one API server, one pacer, restart
    Redis (as asked); returns what was done and when (wall clock)."""
    if not (args.kill_server or args.kill_pacer or args.restart_redis or args.restart_postgres):
        return []
    async with httpx.AsyncClient(timeout=10) as http:
        while True:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                requests = (await http.get(f"{f.daily_root}/_emulator/requests")).json()
                by_status = requests.get("by_route", {}).get("POST /rooms/{name}/dialOut/start", {})
                if int(by_status.get("200", 0)) >= dials * args.fault_at:
                    break
            await asyncio.sleep(0.5)
    done: list[dict] = []

    def kill(kind: str, proc: subprocess.Popen) -> None:
        f.dead_cpu[kind] = f.dead_cpu.get(kind, 0.0) + tree_cpu(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    if args.kill_server and f.ha is not None:
        done.append({"fault": "kill -9 of API server 0", "at": time.time()})
        kill("server", f.ha.servers[0])
    if args.kill_pacer and f.ha is not None:
        done.append({"fault": "kill -9 of pacer 0", "at": time.time()})
        kill("pacer", f.ha.pacers[0])
    if args.restart_redis and f.ha is not None:
        at = time.time()
        if f.ha.redis.proc is not None:
            f.dead_cpu["redis"] = f.dead_cpu.get("redis", 0.0) + tree_cpu(f.ha.redis.proc.pid)
        down = await asyncio.to_thread(f.ha.redis.restart, True)
        done.append({"fault": "kill -9 + restart of Redis", "at": at, "down_s": round(down, 2)})
    if args.restart_postgres:
        at = time.time()
        f.dead_cpu["postgres"] = f.dead_cpu.get("postgres", 0.0) + tree_cpu(f.pg.pid)
        down = await asyncio.to_thread(f.pg.restart)
        done.append({"fault": "immediate stop + restart of PostgreSQL", "at": at, "down_s": round(down, 2)})
    for fault in done:
        print(f"  fault: {fault['fault']}")
    return done


def show(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"fleet: {result['campaigns']} campaigns x {result['targets']} targets, "
        f"{result['workers']} {result['worker_type']} workers, "
        f"Daily limits x{result['rate_scale']:g}"
    )
    table.add_column("figure")
    table.add_column("value")
    cpu, latency = result["cpu_ms_per_dial"], result["webhook_to_flow_latency_s"]
    rows = [
        (
            "campaigns succeeded",
            f"{result['succeeded']} / {result['campaigns']}  {result['states']}, "
            f"{result['resubmitted']} resubmitted",
        ),
        ("makespan (submit -> last run final)", f"{result['makespan_seconds']:.1f} s (wall, shared machine)"),
        ("bound (dials / Daily's start rate)", f"{result['bound_seconds']:.1f} s"),
        ("makespan / bound", f"{result['makespan_over_bound']:.3f}"),
        ("429s answered by the stand-in", str(result["rate_limited_429"])),
        ("CPU per dial: campaign processes (all)", f"{cpu['campaign_processes_total']} ms"),
        (
            "CPU per dial: inside the flow runs",
            f"{cpu['campaign_runs_in_flow']} ms"
            if cpu["campaign_runs_in_flow"] is not None
            else "n/a: the campaigns share the worker processes",
        ),
        ("CPU per dial: Prefect server", f"{cpu['prefect_server']} ms"),
        (
            "CPU per dial: Prefect server, net of idle",
            f"{cpu['prefect_server_net_of_idle']} ms (idle: {result['idle_cpu_per_second']} CPU-s/s)",
        ),
        ("CPU per dial: PostgreSQL", f"{cpu['postgres']} ms"),
        ("CPU per dial: workers themselves", f"{cpu['workers_own']} ms"),
        ("CPU per dial: workers with their runs (process trees)", f"{cpu['workers_with_runs']} ms"),
        ("CPU per dial: receiver / pacer", f"{cpu['receiver']} ms / {cpu['pacer']} ms"),
        ("CPU per dial: Redis / haproxy", f"{cpu.get('redis', 0)} ms / {cpu.get('haproxy', 0)} ms"),
        (
            "CPU per dial: project total (workers' trees, receiver, pacer, Redis, haproxy, servers, PG)",
            f"{cpu['project_total']} ms",
        ),
        ("CPU per dial: stand-in (not counted)", f"{cpu['standin_not_counted']} ms"),
        (
            "peak RSS per campaign process (in-process: per worker)",
            f"median {result['peak_rss_mb']['median']} MB, max {result['peak_rss_mb']['max']} MB",
        ),
        (
            "webhook->flow latency",
            f"p50 {latency['p50_median_of_runs']} s (median of runs), "
            f"p95 {latency['p95_95th_of_runs']} s (95th pct of runs)",
        ),
        (
            "webhook: event -> receiver answered (stand-in)",
            f"p50 {result['webhooks']['created_to_delivered_s']['p50']} s, "
            f"p95 {result['webhooks']['created_to_delivered_s']['p95']} s, "
            f"max {result['webhooks']['created_to_delivered_s']['max']} s, "
            f"{result['webhooks']['never_delivered']} never; receiver answer "
            f"p50 {result['webhooks']['receiver_answer_ms']['p50']} ms, "
            f"p95 {result['webhooks']['receiver_answer_ms']['p95']} ms",
        ),
        ("rooms / legs left on the stand-in", f"{result['rooms_left']} / {result['legs_left_up']}"),
    ]
    if result.get("servers"):
        rows.insert(
            0, ("setup", f"{result['servers']} API servers behind haproxy, Redis, {result['pacers']} pacers")
        )
    for fault in result.get("faults", []):
        rows.append(
            (
                f"fault: {fault['fault']}",
                f"{fault['dials_after']} dials after it took {fault['dialling_after_s']} s "
                f"(Daily's bound: {fault['bound_after_s']} s); longest pause between two "
                f"{fault['longest_dial_pause_after_s']} s"
                + (f"; down {fault['down_s']} s" if "down_s" in fault else ""),
            )
        )
    for row in rows:
        table.add_row(*row)
    Console().print(table)


# -- the plain-script peer (benchmarks/peer.py) on the same stand-in --------------------------------

PEER = Path(__file__).resolve().with_name("peer.py")


def _stop_procs(stack: LocalStack, pids: list[int]) -> None:
    """SIGTERM these processes' groups (each was started in a session of its own) and wait."""
    procs = [p for p in stack.procs if p.pid in pids]
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_peer(args: argparse.Namespace, f: Fleet) -> tuple[dict, str]:
    """Stop the project's processes but the stand-in, reset it, run the peer on it; (figures, table).

    The reset leaves the stand-in as the fleet found it (no rooms, events or webhook; its rate
    windows and request counts cleared) with the same limits, so the peer starts as the fleet did.
    """
    t0 = time.monotonic()
    _stop_procs(f.stack, [w.pid for w in f.workers])  # SIGTERMed by fleet() already
    _stop_procs(f.stack, [f.server_pid, f.receiver_pid, f.pacer_pid])
    f.pg.stop()
    httpx.post(f"{f.daily_root}/_emulator/reset", timeout=30).raise_for_status()
    print(f"project stopped but the stand-in, stand-in reset, in {time.monotonic() - t0:.1f} s; peer starts")
    out = f.stack.workdir / "peer.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAILY_", "PREFECT_"))}
    done = subprocess.run(
        [
            sys.executable,
            str(PEER),
            "--daily-url",
            f"{f.daily_root}/v1",
            "--campaigns",
            str(args.campaigns),
            "--targets",
            str(args.targets),
            "--rate-scale",
            str(args.rate_scale),
            "--standin-pid",
            str(f.standin_pid),
            "--json-out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=args.timeout,
        env=env,
    )
    if not out.exists():
        raise RuntimeError(
            f"the peer failed (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        )
    peer = json.loads(out.read_text())
    peer["exit_status"] = done.returncode
    table = "\n".join(line for line in done.stdout.splitlines() if not line.startswith("{"))
    return peer, table


def _ratio(project: float | None, peer: float | None) -> float | None:
    if project is None or peer is None or peer == 0:
        return None
    return round(project / peer, 2)


def compare(result: dict) -> list[dict]:
    """The side-by-side rows: figure, project, peer, project / peer (None where it means nothing)."""
    peer = result["peer"]
    cpu, pcpu = result["cpu_ms_per_dial"], peer["cpu_ms_per_dial"]
    latency, plat = result["webhook_to_flow_latency_s"], peer["webhook_to_handler_latency_s"]
    rss, prss = result["peak_rss_mb_by_component"], peer["peak_rss_mb"]
    requests = sum(sum(c.values()) for c in result["requests_by_route"].values())
    peer_requests = sum(sum(c.values()) for c in peer["requests_by_route"].values())

    def row(figure: str, project: object, theirs: object, ratio: bool = True) -> dict:
        both_numbers = isinstance(project, int | float) and isinstance(theirs, int | float)
        return {
            "figure": figure,
            "project": project,
            "peer": theirs,
            "ratio": _ratio(project, theirs) if ratio and both_numbers else None,
        }

    return [
        row(
            "dials completed (project: K x campaigns Completed)",
            result["succeeded"] * result["targets"],
            peer["completed_dials"],
            False,
        ),
        row("CPU ms/dial: workers (with the campaign runs)", cpu["workers_with_runs"], pcpu["peer_process"]),
        row("CPU ms/dial: receiver", cpu["receiver"], 0.0),
        row("CPU ms/dial: pacer", cpu["pacer"], 0.0),
        row("CPU ms/dial: Prefect server", cpu["prefect_server"], 0.0),
        row("CPU ms/dial: PostgreSQL", cpu["postgres"], 0.0),
        row("CPU ms/dial: total (stand-in not counted)", cpu["project_total"], pcpu["peer_process"]),
        row("CPU ms/dial: stand-in (shown, not counted)", cpu["standin_not_counted"], pcpu["standin"]),
        row(
            "Daily requests per dial (stand-in's count)",
            round(requests / result["dials"], 2),
            round(peer_requests / peer["dials"], 2),
        ),
        row("makespan s", result["makespan_seconds"], peer["makespan_seconds"]),
        row("makespan / bound", result["makespan_over_bound"], peer["makespan_over_bound"]),
        row(
            "makespan / bound, to the last run's end",
            round(result["makespan_to_last_end_seconds"] / result["bound_seconds"], 3)
            if result.get("makespan_to_last_end_seconds")
            else None,
            peer["makespan_over_bound"],
        ),
        row("peak RSS MB: dialing processes (sum)", rss["workers"], prss),
        row("peak RSS MB: every process (sum)", round(sum(rss.values()), 1), prss),
        row(
            "webhook->flow p50 s (median of campaigns)",
            latency["p50_median_of_runs"],
            plat["p50_median_of_campaigns"],
        ),
        row(
            "webhook->flow p95 s (95th pct of campaigns)",
            latency["p95_95th_of_runs"],
            plat["p95_95th_of_campaigns"],
        ),
        row("429s", result["rate_limited_429"], peer["rate_limited_429"], False),
        row(
            "rooms / legs left",
            f"{result['rooms_left']} / {result['legs_left_up']}",
            f"{peer['rooms_left']} / {peer['legs_left_up']}",
            False,
        ),
    ]


def show_side_by_side(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    load = result.get("background_load", 0)
    table = Table(
        title=f"project vs plain-script peer: {result['campaigns']} campaigns x {result['targets']} "
        f"targets, Daily limits x{result['rate_scale']:g}, same stand-in, "
        + (
            f"{load} busy-loop process{'es' if load > 1 else ''} running throughout"
            if load
            else "no background load"
        )
    )
    for column in ("figure", "project", "peer", "project / peer"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for r in result["comparison"]:
        table.add_row(
            r["figure"],
            str(r["project"]),
            str(r["peer"]),
            "" if r["ratio"] is None else f"{r['ratio']:g}",
        )
    Console(width=max(Console().width, 110)).print(table)  # a pipe is 80 wide: no wrapping
    print(
        "peer: one process does what workers, receiver and pacer do; it has no Prefect server or "
        "database. Its CPU counts from its webhook registration to its last room deleted."
    )


def start_busy_loops(n: int) -> list[subprocess.Popen]:
    """N processes spinning on a core each, so a busy machine is measured on purpose."""
    return [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True) for _ in range(n)
    ]


def stop_busy_loops(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.wait()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaigns", "-m", type=int, default=20)
    parser.add_argument("--targets", "-k", type=int, default=5)
    parser.add_argument("--workers", "-w", type=int, default=2)
    parser.add_argument(
        "--worker-type",
        choices=["in-process", "process"],
        default="in-process",
        help="`daily-sip worker` (campaigns share a process) or `prefect worker start`",
    )
    # 25 per worker (50 campaign processes on two shared cores) starved the running campaigns.
    parser.add_argument(
        "--limit-per-worker",
        type=int,
        default=None,
        help="the workers' --limit (default: 10 for process workers; in-process: the worker's own "
        "default, 10 campaigns still starting their calls; 0 there = no limit)",
    )
    parser.add_argument("--rate-scale", type=float, default=1.0, help="Daily's limits times this")
    parser.add_argument("--timeout", type=float, default=1800, help="give up waiting after this (s)")
    parser.add_argument(
        "--idle-sample",
        type=float,
        default=10.0,
        help="seconds of idle server CPU measured before submitting",
    )
    parser.add_argument(
        "--with-peer",
        action="store_true",
        help="then run benchmarks/peer.py (plain asyncio + httpx) on the same stand-in and compare",
    )
    parser.add_argument(
        "--background-load",
        type=int,
        default=0,
        metavar="N",
        help="keep N busy-loop processes running from before the fleet until after the peer",
    )
    parser.add_argument(
        "--servers",
        type=int,
        default=0,
        help="N > 0: Prefect's several-server setup (docs/ha.md): Redis, N API servers, services "
        "once, haproxy in front, pacers sharing one book in Redis",
    )
    parser.add_argument("--pacers", type=int, default=2, help="pacer processes with --servers")
    parser.add_argument("--kill-server", action="store_true", help="kill -9 one API server at --fault-at")
    parser.add_argument("--kill-pacer", action="store_true", help="kill -9 one pacer at --fault-at")
    parser.add_argument(
        "--restart-redis", action="store_true", help="kill -9 and restart Redis at --fault-at"
    )
    parser.add_argument(
        "--restart-postgres",
        action="store_true",
        help="stop PostgreSQL at once (crash recovery at restart) and start it again at --fault-at",
    )
    parser.add_argument(
        "--fault-at", type=float, default=0.5, help="faults once this share of the dials has started"
    )
    parser.add_argument("--json-out", type=Path, help="also write the figures here as JSON")
    parser.add_argument(
        "--count-requests",
        action="store_true",
        help="count the Prefect server's API requests by route (logs access lines: costs CPU)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the workdir with every log")
    args = parser.parse_args()
    if (args.kill_server or args.kill_pacer or args.restart_redis) and not args.servers:
        parser.error("--kill-server, --kill-pacer and --restart-redis need --servers N")
    if args.limit_per_worker is None:
        args.limit_per_worker = 10 if args.worker_type == "process" else None
    # Stopped with SIGTERM or SIGINT (even when started in the background, where SIGINT is
    # ignored), it still stops everything it started: the finally below runs.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    busy = start_busy_loops(args.background_load)
    if busy:
        print(f"{len(busy)} busy-loop processes running (their CPU is counted nowhere)")
    peer_table = ""
    try:
        stack = LocalStack(workdir=Path(tempfile.mkdtemp(prefix="fleet-")))
        t0 = time.monotonic()
        pg = Postgres.start()
        print(f"PostgreSQL up after {time.monotonic() - t0:.1f} s")
        try:
            f = start_fleet(args, stack, pg)
            result = asyncio.run(fleet(args, f))
            result["background_load"] = args.background_load
            if args.with_peer:
                result["peer"], peer_table = run_peer(args, f)
                result["comparison"] = compare(result)
        finally:
            t1 = time.monotonic()
            stack.close()
            pg.stop()
            if args.keep_logs:
                print(f"logs kept in {stack.workdir}")
            else:
                shutil.rmtree(stack.workdir, ignore_errors=True)
            print(f"everything stopped in {time.monotonic() - t1:.1f} s")
    finally:
        stop_busy_loops(busy)
    show(result)
    if args.with_peer:
        print(peer_table)
        show_side_by_side(result)
    print(json.dumps(result))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
