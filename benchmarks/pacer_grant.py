"""What one pacer grant costs: in memory, with its state file, and with its book in Redis.

Starts ``python -m daily_sip.pacer`` three ways (memory only; ``--state-file``; ``--redis-url``
against a private ``redis-server`` from `benchmarks.ha`) and asks each for ``--grants`` permits
one after another over HTTP, reporting each answered (``/done``), in a class whose window never
makes anyone wait. Prints, per grant + report: wall time seen by the client (µs) and CPU time of
the pacer process and of redis-server (µs). CPU time, not wall time, is the figure that holds on a
loaded machine.

    .venv/bin/python benchmarks/pacer_grant.py --grants 2000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ha import Redis, missing

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def measure(args: list[str], grants: int, redis_pid: int | None = None) -> dict[str, float]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "daily_sip.pacer", "--port", "0", *args], stdout=subprocess.PIPE, text=True
    )
    try:
        url = proc.stdout.readline().strip() if proc.stdout else ""
        ask = {"rate": "bench", "windows": [[10**9, 1.0]]}
        with httpx.Client(base_url=url, timeout=10) as http:
            for _ in range(50):  # warm up: imports, connection, script load
                http.post(f"/v1/permits/{http.post('/v1/permits', json=ask).json()['id']}/done")
            cpu0, rcpu0, t0 = (
                cpu_seconds(proc.pid),
                cpu_seconds(redis_pid) if redis_pid else 0.0,
                time.perf_counter(),
            )
            for _ in range(grants):
                pid = http.post("/v1/permits", json=ask).json()["id"]
                http.post(f"/v1/permits/{pid}/done")
            wall = time.perf_counter() - t0
            cpu = cpu_seconds(proc.pid) - cpu0
            rcpu = (cpu_seconds(redis_pid) - rcpu0) if redis_pid else 0.0
        return {
            "wall_us": wall / grants * 1e6,
            "pacer_cpu_us": cpu / grants * 1e6,
            "redis_cpu_us": rcpu / grants * 1e6,
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grants", type=int, default=2000)
    args = parser.parse_args()
    rows: dict[str, dict[str, float]] = {}
    rows["memory"] = measure(["--state-file", ""], args.grants)
    with tempfile.TemporaryDirectory() as tmp:
        rows["state file"] = measure(["--state-file", str(Path(tmp) / "book.json")], args.grants)
    if why := missing():
        print(f"redis: skipped ({why})")
    else:
        redis = Redis.start()
        try:
            assert redis.proc is not None
            rows["redis"] = measure(["--redis-url", redis.url], args.grants, redis.proc.pid)
        finally:
            redis.stop()
    header = f"{'book':<12}{'wall µs/grant':>16}{'pacer CPU µs':>15}{'redis CPU µs':>15}"
    print(f"{header}  (grant + done, {args.grants} in a row)")
    for name, row in rows.items():
        print(f"{name:<12}{row['wall_us']:>16.0f}{row['pacer_cpu_us']:>15.0f}{row['redis_cpu_us']:>15.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
