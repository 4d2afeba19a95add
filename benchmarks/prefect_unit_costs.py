"""What each kind of Prefect write costs the Prefect server and PostgreSQL, one kind at a time.

Starts the same private PostgreSQL and Prefect server as ``fleet.py`` and, with nothing else
running, makes N of one kind of write at a time from this process: a flow run's life (created,
Pending, Running, Completed), a task run's (three state events), a table artifact created, one
updated, a Daily event posted as the receiver posts it, a log line sent by a run's logger, a
variable updated. It waits for the server's services to persist what was sent, and prints the
CPU of the server and of PostgreSQL per write, net of what the idle server burns over the same
time. Multiplied by what one campaign writes (``fleet.py`` prints it under "prefect_database"),
this is where the server's share of a dial goes.

    .venv/bin/python benchmarks/prefect_unit_costs.py -n 200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fleet import Postgres, start_prefect_server, tree_cpu

from daily_sip.local_stack import LocalStack

SETTLE_SECONDS = 8.0  # the event persister and task-run recorder flush every 5 s


async def measure(
    name: str, n: int, make: Callable[[int], Awaitable[None]], server_pid: int, pg: Postgres, idle: tuple
) -> dict:
    cpu0, pg0, t0, me0 = tree_cpu(server_pid), tree_cpu(pg.pid), time.monotonic(), time.process_time()
    for i in range(n):
        await make(i)
    client_cpu = time.process_time() - me0
    await asyncio.sleep(SETTLE_SECONDS)
    took = time.monotonic() - t0
    server = tree_cpu(server_pid) - cpu0 - idle[0] * took
    postgres = tree_cpu(pg.pid) - pg0 - idle[1] * took
    row = {
        "write": name,
        "n": n,
        "server_ms_each": round(1000 * server / n, 2),
        "postgres_ms_each": round(1000 * postgres / n, 2),
        "client_ms_each": round(1000 * client_cpu / n, 2),
    }
    print(json.dumps(row), flush=True)
    return row


async def run(n: int, server_pid: int, pg: Postgres) -> list[dict]:
    from prefect import flow, get_run_logger, task
    from prefect.artifacts import acreate_table_artifact
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import ArtifactUpdate
    from prefect.context import AsyncClientContext
    from prefect.events import Event
    from prefect.variables import Variable

    from daily_sip.receiver.emitter import PrefectEventsEmitter

    @task(persist_result=False)
    async def step() -> None:
        return None

    @flow(persist_result=False, result_storage=Path(tempfile.gettempdir()))
    async def empty() -> None:
        return None

    rows: list[dict] = []
    async with AsyncClientContext.get_or_create():
        client = get_client()
        # Idle: what the server's loops cost with nothing sent.
        c0, p0, t0 = tree_cpu(server_pid), tree_cpu(pg.pid), time.monotonic()
        await asyncio.sleep(20)
        took = time.monotonic() - t0
        idle = ((tree_cpu(server_pid) - c0) / took, (tree_cpu(pg.pid) - p0) / took)
        print(json.dumps({"idle_ms_per_s": [round(1000 * idle[0], 1), round(1000 * idle[1], 1)]}))

        async def flow_run(_: int) -> None:
            await empty()

        rows.append(await measure("flow run (create, 3 states)", n, flow_run, server_pid, pg, idle))

        @flow(persist_result=False, result_storage=Path(tempfile.gettempdir()))
        async def many_steps(count: int) -> None:
            for _ in range(count):
                await step()

        async def task_runs(_: int) -> None:
            if _ == 0:
                await many_steps(n)

        rows.append(await measure("task run (3 state events)", n, task_runs, server_pid, pg, idle))

        table = [{"#": str(i), "bridge": f"bridge {i}", "now": "✅ answered"} for i in range(5)]
        ids: list[uuid.UUID] = []

        async def artifact(i: int) -> None:
            ids.append(await acreate_table_artifact(table=table, key=f"unit-{i}", description="x"))

        rows.append(await measure("table artifact created", n, artifact, server_pid, pg, idle))

        async def artifact_update(i: int) -> None:
            await client.update_artifact(ids[i], ArtifactUpdate(data=json.dumps(table), description=str(i)))

        rows.append(await measure("table artifact updated", n, artifact_update, server_pid, pg, idle))

        emitter = PrefectEventsEmitter.from_settings()

        async def daily_event(i: int) -> None:
            await emitter(
                Event(
                    occurred=datetime.now(UTC),
                    event="daily.dialout.answered",
                    resource={"prefect.resource.id": "daily.room.unit", "daily.room": "unit"},
                    related=[
                        {
                            "prefect.resource.id": f"daily.dialout.{uuid.uuid4()}",
                            "prefect.resource.role": "dialout-session",
                        }
                    ],
                    payload={"session_id": str(uuid.uuid4()), "n": i},
                    id=uuid.uuid4(),
                )
            )

        rows.append(await measure("Daily event, POST /events", n, daily_event, server_pid, pg, idle))
        await emitter.aclose()

        @flow(persist_result=False, result_storage=Path(tempfile.gettempdir()))
        async def chatty(count: int) -> None:
            logger = get_run_logger()
            for i in range(count):
                logger.info("line %d of a campaign's log", i)

        async def log_lines(i: int) -> None:
            if i == 0:
                await chatty(n)

        rows.append(await measure("log line (flow run logger)", n, log_lines, server_pid, pg, idle))

        async def variable(i: int) -> None:
            await Variable.aset("unit-costs", {"i": i}, overwrite=True)

        rows.append(await measure("variable set", n, variable, server_pid, pg, idle))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=200, help="writes of each kind")
    args = parser.parse_args()
    os.environ.pop("PREFECT_API_URL", None)
    stack = LocalStack(workdir=Path(tempfile.mkdtemp(prefix="unit-costs-")))
    pg = Postgres.start()
    try:
        api_url, server_pid = start_prefect_server(stack, pg)
        os.environ.update(PREFECT_API_URL=api_url, PREFECT_LOGGING_LEVEL="WARNING")
        logging.getLogger("prefect").setLevel(logging.WARNING)
        rows = asyncio.run(run(args.n, server_pid, pg))
    finally:
        with contextlib.suppress(Exception):
            stack.close()
        pg.stop()
    print("\nwrite | server ms | PostgreSQL ms | this process ms (each)")
    for r in rows:
        print(f"{r['write']} | {r['server_ms_each']} | {r['postgres_ms_each']} | {r['client_ms_each']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
