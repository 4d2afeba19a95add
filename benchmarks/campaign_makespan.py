"""A 20-target campaign against the stand-in at Daily's real rate limits.

Prints makespan against the rate-limit bound, 429s the stand-in refused, client CPU per dial,
and webhook->flow latency. Real processes: Prefect server, stand-in, receiver.

    .venv/bin/python benchmarks/campaign_makespan.py [TARGETS]
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx

from daily_sip.local_stack import STANDIN_DEV_KEY, LocalStack, new_webhook_secret

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20
HOLD = 2.0


def _start_offsets(legs: list[dict]) -> list[float]:
    """Seconds from the first dial-out start to each later one, as the stand-in saw them."""
    times = sorted(
        datetime.fromisoformat(leg["created_at"].replace("Z", "+00:00")).timestamp()
        for leg in legs
        if leg.get("kind") == "dialout"
    )
    return [round(t - times[0], 1) for t in times]


async def main(daily_url: str, webhook_url: str) -> None:
    from daily_sip.flows.campaign.model import Campaign
    from daily_sip.flows.dial_campaign import dial_campaign

    campaign = Campaign(
        name="bench",
        targets=[{"sip_uri": f"sip:bridge-{i:02d}@bench.example.com"} for i in range(N)],
        after_answer={"mode": "hang_up_after", "hold_seconds": HOLD},
        ring_timeout_seconds=30,
    )
    cpu0, t0 = time.process_time(), time.perf_counter()
    state = await dial_campaign(campaign=campaign, webhook_url=webhook_url, return_state=True)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    report = await state.aresult(raise_on_failure=False)
    async with httpx.AsyncClient() as http:
        root = daily_url.removesuffix("/v1")
        requests = (await http.get(f"{root}/_emulator/requests")).json()
        legs = (await http.get(f"{root}/_emulator/legs")).json()
    print("dial-out start offsets (s):", _start_offsets(legs))
    starts = [t.answered_at for t in report.targets if t.answered_at]
    first, last = min(starts), max(starts)
    # Daily: 5 starts per 5 s -> the last of N starts cannot come before 5 x ceil(N/5 - 1) s.
    bound = 5 * max(0, -(-N // 5) - 1) + HOLD
    print(f"targets                       {N} ({report.message})")
    print(f"flow run wall time            {wall:.1f} s (incl. provisioning and cleanup)")
    print(f"first->last answer            {(last - first).total_seconds():.1f} s")
    print(
        f"dial phase makespan           {(report.finished_at - report.started_at).total_seconds():.1f} s"
        f"  vs rate-limit bound {bound:.1f} s (last start at 5 per 5 s + hold {HOLD:.0f} s)"
    )
    refused = {
        route: n
        for route, codes in requests.get("by_route", {}).items()
        for code, n in (codes.items() if isinstance(codes, dict) else [])
        if str(code) == "429"
    }
    print(f"429s refused by the stand-in  {requests.get('rate_limited', requests)} {refused or ''}")
    print(f"client CPU                    {cpu:.2f} s total, {1000 * cpu / N:.0f} ms per dial")
    print(
        f"webhook->flow latency         p50 {report.event_latency_p50:.3f} s, p95 "
        f"{report.event_latency_p95:.3f} s over {report.events_received} events "
        f"({report.duplicate_events} duplicates dropped)"
    )


if __name__ == "__main__":
    with LocalStack(workdir=Path(".bench")) as stack:
        api_url, _, secs = stack.prefect_server()
        secret = new_webhook_secret()
        daily_url = stack.standin(rate_limit_scale=1, connect_delay=0.2, answer_delay=0.3)
        webhook_url = stack.receiver(secret, api_url)
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        os.environ.update(
            PREFECT_API_URL=api_url,
            DAILY_API_KEY=STANDIN_DEV_KEY,
            DAILY_API_URL=daily_url,
            DAILY_WEBHOOK_SECRET=secret,
        )
        print(f"prefect server healthy after {secs:.1f} s\n")
        asyncio.run(main(daily_url, webhook_url))
