"""What one Daily call costs: bare client vs. the same call as a Prefect task, and the pacing
(in-process, and through the shared pacer of `daily_sip.pacer`).

Starts a Prefect server and the stand-in (rate limits off at the stand-in, so only our own
pacing shapes the numbers), then times N calls of GET /rooms/:name each way. Prints wall and
client-CPU milliseconds per call (CPU = time.process_time of this process, all threads).

    .venv/bin/python benchmarks/client_overhead.py [N]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

from daily_sip.local_stack import STANDIN_DEV_KEY, LocalStack

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100


def line(label: str, walls: list[float], cpus: list[float]) -> None:
    walls_ms = sorted(w * 1000 for w in walls)
    p95 = walls_ms[int(len(walls_ms) * 0.95) - 1]
    print(
        f"{label:<44} wall p50 {statistics.median(walls_ms):7.2f} ms  p95 "
        f"{p95:7.2f} ms   CPU {1000 * sum(cpus) / len(cpus):6.2f} ms/call"
    )


async def measure(label: str, call) -> None:
    await call()  # warm-up: connections, imports, limit creation
    walls, cpus = [], []
    for _ in range(N):
        w0, c0 = time.perf_counter(), time.process_time()
        await call()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    line(label, walls, cpus)


GLOBAL_LIMIT = "bench-daily-api-default"


async def main(daily_url: str, pacer_url: str) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.concurrency.asyncio import rate_limit

    from daily_sip.tasks import DailyClient, DailyCredentials
    from daily_sip.tasks.ratelimit import DEFAULT
    from daily_sip.tasks.rooms import aget_room

    creds = DailyCredentials(api_key=STANDIN_DEV_KEY, api_url=daily_url)
    async with DailyClient(STANDIN_DEV_KEY, daily_url) as client:
        room = await client.create_room("bench-room")
        await measure("bare DailyClient.get_room", lambda: client.get_room(room.name))

    # The old way, for comparison: Daily's default class as a Prefect global limit in rate_limit mode.
    (count, seconds), *_ = DEFAULT.windows
    async with get_client() as prefect:
        await prefect.upsert_global_concurrency_limit_by_name(
            GLOBAL_LIMIT, limit=count, slot_decay_per_second=count / seconds
        )

    @flow
    async def bench_flow(scale: str, label: str) -> None:
        os.environ["DAILY_RATE_LIMIT_SCALE"] = scale
        await measure(label, lambda: aget_room(room.name, credentials=creds))

    await bench_flow("0", "task get_room, no pacing")
    await bench_flow("1", "task get_room, paced in-process")
    os.environ["DAILY_PACER_URL"] = pacer_url  # how several processes share Daily's window
    await bench_flow("1", "task get_room, paced via the shared pacer")
    del os.environ["DAILY_PACER_URL"]
    # Last: calling faster than the limit piles up denied slots, which lengthens later waits.
    await measure("prefect.concurrency rate_limit() alone", lambda: rate_limit(GLOBAL_LIMIT))


if __name__ == "__main__":
    with LocalStack(workdir=Path(".bench")) as stack:
        api_url, _, secs = stack.prefect_server()
        os.environ["PREFECT_API_URL"] = api_url
        os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
        daily_url = stack.standin(rate_limit_scale=0)
        pacer_url = stack.pacer()
        print(f"prefect server healthy after {secs:.1f} s; {N} calls each\n")
        asyncio.run(main(daily_url, pacer_url))
