"""Does every API server's live event stream deliver every event? (docs/ha.md, prefect-upstream.md)

Starts the several-server setup of ``fleet.py --servers N`` (PostgreSQL, Redis, N API servers,
their services once, haproxy), subscribes to ``/api/events/out`` on each API server directly,
posts bursts of probe events through the balancer for ``--seconds`` (past Redis stream trims,
every ``PREFECT_REDIS_MESSAGING_CONSUMER_TRIM_EVERY`` s, 60 by default) and prints, per server,
how many of the posted events its stream delivered. Set the trim interval in the environment to
compare::

    .venv/bin/python benchmarks/ha_event_stream.py --seconds 150
    PREFECT_REDIS_MESSAGING_CONSUMER_TRIM_EVERY=3600 .venv/bin/python benchmarks/ha_event_stream.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from daily_sip.local_stack import LocalStack

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.fleet import Postgres, start_prefect_ha


async def listen(api_url: str, seen: set[str], ready: asyncio.Event) -> None:
    from prefect.events.clients import PrefectEventSubscriber
    from prefect.events.filters import EventFilter, EventNameFilter

    async with PrefectEventSubscriber(
        api_url=api_url, filter=EventFilter(event=EventNameFilter(prefix=["probe."]))
    ) as subscriber:
        ready.set()
        async for event in subscriber:
            seen.add(str(event.id))


async def probe(balancer: str, servers: list[str], seconds: float, burst: int, every: float) -> dict:
    seen: list[set[str]] = [set() for _ in servers]
    readies = [asyncio.Event() for _ in servers]
    listeners = [
        asyncio.create_task(listen(url, s, r)) for url, s, r in zip(servers, seen, readies, strict=True)
    ]
    await asyncio.gather(*(r.wait() for r in readies))
    await asyncio.sleep(1.0)
    sent: list[str] = []
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=30) as http:
        while time.monotonic() < deadline:
            batch = []
            for _ in range(burst):
                event_id = str(uuid.uuid4())
                batch.append(
                    {
                        "id": event_id,
                        "occurred": datetime.now(UTC).isoformat(),
                        "event": "probe.tick",
                        "resource": {"prefect.resource.id": "probe.stream"},
                        "payload": {"n": len(sent)},
                    }
                )
                sent.append(event_id)
            (await http.post(f"{balancer}/events", json=batch)).raise_for_status()
            await asyncio.sleep(every)
    await asyncio.sleep(5.0)  # the streams catch up
    for task in listeners:
        task.cancel()
    wanted = set(sent)
    return {
        "sent": len(sent),
        "delivered": [len(s & wanted) for s in seen],
        "missed": [len(wanted - s) for s in seen],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=150.0, help="how long to post (past 2 trims)")
    parser.add_argument("--burst", type=int, default=50, help="events per POST")
    parser.add_argument("--every", type=float, default=0.5, help="seconds between POSTs")
    args = parser.parse_args()
    trim = os.environ.get("PREFECT_REDIS_MESSAGING_CONSUMER_TRIM_EVERY", "60 (default)")
    stack = LocalStack(workdir=Path(tempfile.mkdtemp(prefix="ha-stream-")))
    pg = Postgres.start()
    try:
        api_url, ha = start_prefect_ha(stack, pg, args.servers)
        servers = [backend.rstrip("/") + "/api" for backend in ha.lb.backends["api"]]
        os.environ["PREFECT_API_URL"] = api_url
        result = asyncio.run(probe(api_url, servers, args.seconds, args.burst, args.every))
    finally:
        stack.close()  # Redis and haproxy too
        pg.stop()
        shutil.rmtree(stack.workdir, ignore_errors=True)
    print(f"trim every {trim} s; {args.servers} API servers; {result['sent']} events posted")
    for i, (got, missed) in enumerate(zip(result["delivered"], result["missed"], strict=True)):
        print(f"  server {i}: live stream delivered {got}, missed {missed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
