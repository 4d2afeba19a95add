"""Chaos soak: N randomized campaigns against the stand-in with faults, checked against its ground truth.

Each campaign gets random targets (answering, busy, no answer, far-end hang-up, not found), a
created or a borrowed room, and one random trouble: Daily failing the cleanup routes for a
while, `dialOut/start` answers lost after the call was placed (with presence failing too), a
cancel at a random moment, or none. The stand-in also duplicates, reorders and drops some
webhooks and answers a few requests with 5xx throughout. After all campaigns the sweeper runs
once; then the stand-in's own state (`/_emulator/...`) is compared with what the runs reported.

Prints: campaigns, rooms left, SIP left on, borrowed rooms not restored, legs left up, wrong
statuses, double dials, runs past deadline. Exit status 1 if any leftover or double dial.

    .venv/bin/python benchmarks/chaos.py [CAMPAIGNS] [--seed S] [--parallel P]

Starts its own stand-in and receiver; uses the Prefect server at PREFECT_API_URL if set, else
starts one. Not implemented here (yet): kill -9 of runs/workers and Prefect server restarts
(covered by tests/flows/test_sweeper.py and tests/flows/test_room_lock.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
from collections import Counter
from typing import Any

import httpx

from daily_sip.local_stack import STANDIN_DEV_KEY, LocalStack, new_webhook_secret

OUTCOMES = ["ok", "busy", "noanswer", "hangup", "notfound"]
CLEANUP_ROUTES = ["DELETE /rooms/{name}", "POST /rooms/{name}/dialOut/stop", "GET /rooms/{name}/presence",
                  "POST /rooms/{name}"]
DEADLINE = 25.0
# A run may take its deadline plus cleanup (which rides out the injected outages) before it counts as late.
LATE_AFTER = DEADLINE + 60.0
BUSY, NO_ANSWER = {486, 600}, {408, 480, 487}


class Soak:
    def __init__(self, root: str, webhook_url: str, seed: int) -> None:
        self.root, self.webhook_url = root, webhook_url
        self.rng = random.Random(seed)
        self.reports: list[Any] = []
        self.borrowed: list[str] = []
        self.troubles: Counter[str] = Counter()

    def emu(self, path: str, method: str = "GET", **body: Any) -> Any:
        r = httpx.request(method, f"{self.root}/_emulator/{path}", json=body or None, timeout=30)
        r.raise_for_status()
        return r.json()

    def campaign(self, i: int) -> Any:
        from daily_sip.flows.campaign import Campaign

        n = self.rng.randint(2, 4)
        targets = [{"sip_uri": f"sip:{self.rng.choice(OUTCOMES)}-{i}-{k}@chaos.example.com"}
                   for k in range(n)]
        spec: dict[str, Any] = {
            "name": f"chaos-{i}", "targets": targets, "ring_timeout_seconds": 4,
            "after_answer": {"mode": "hang_up_after", "hold_seconds": self.rng.choice([0.5, 1.5, 3.0])},
            "success": {"min_answered_fraction": 0}, "ready_timeout_seconds": 10,
            "deadline_seconds": DEADLINE, "redial": {"attempts": 2, "backoff_seconds": 0.5},
        }
        if self.rng.random() < 0.3:
            room = f"chaos-borrowed-{i}"
            r = httpx.post(f"{self.root}/v1/rooms", json={"name": room},
                           headers={"Authorization": f"Bearer {STANDIN_DEV_KEY}"}, timeout=30)
            if r.status_code == 200:
                spec["room"] = room
                self.borrowed.append(room)
        return Campaign.model_validate(spec)

    async def one(self, i: int) -> None:
        from daily_sip.flows.dial_campaign import dial_campaign

        c = self.campaign(i)
        trouble = self.rng.choice(["none", "cleanup-outage", "lost-start", "cancel"])
        self.troubles[trouble] += 1
        task = asyncio.create_task(dial_campaign(campaign=c, webhook_url=self.webhook_url, return_state=True))
        if trouble == "cleanup-outage":
            await asyncio.sleep(self.rng.uniform(1, 4))
            for route in CLEANUP_ROUTES:
                self.emu("faults", "POST", route=route, mode="error", seconds=self.rng.uniform(5, 40))
        elif trouble == "lost-start":
            self.emu("faults", "POST", route="POST /rooms/{name}/dialOut/start", mode="lost",
                     count=self.rng.randint(1, 2))
            self.emu("faults", "POST", route="GET /rooms/{name}/presence", mode="error",
                     seconds=self.rng.uniform(0, 10))
        elif trouble == "cancel":
            await asyncio.sleep(self.rng.uniform(0.2, 5))
            task.cancel()
        try:
            state = await task
            report = await state.aresult(raise_on_failure=False)
        except asyncio.CancelledError:
            report = None
        except Exception as exc:  # a run that raised instead of reporting is itself a finding
            print(f"campaign {i}: raised {type(exc).__name__}: {exc}", file=sys.stderr)
            report = None
        self.reports.append((c, report))

    async def run(self, n: int, parallel: int) -> None:
        queue = list(range(n))
        while queue:
            batch, queue = queue[:parallel], queue[parallel:]
            await asyncio.gather(*(self.one(i) for i in batch))
        self.emu("faults", "DELETE")
        from daily_sip.flows.sweeper import sweep_ledgers

        await sweep_ledgers(grace_seconds=0)

    def verdict(self) -> dict[str, int]:
        rooms = self.emu("rooms")
        legs = self.emu("legs")
        chaos_rooms = [r for r in rooms if r["name"].startswith("chaos-")]
        created_left = [r for r in chaos_rooms if not r["name"].startswith("chaos-borrowed-")]
        borrowed = {r["name"]: r for r in chaos_rooms if r["name"] in self.borrowed}
        per_user = Counter(leg["userId"] for leg in legs if leg.get("userId"))
        wrong = late = 0
        for _c, report in self.reports:
            if report is None or not hasattr(report, "targets"):
                continue
            if report.finished_at and (report.finished_at - report.started_at).total_seconds() > LATE_AFTER:
                late += 1
            tag = (report.flow_run_id or "").replace("-", "")[:8]
            for t in report.targets:
                mine = [leg for leg in legs if (leg.get("userId") or "").startswith(f"{tag}-{t.index}-")]
                if not _consistent(t, mine):
                    wrong += 1
                    seen = [(leg["state"], leg.get("sip_code"), leg.get("end_reason")) for leg in mine]
                    print(f"wrong status: {t.sip_uri} reported {t.status} ({t.error or t.detail}); "
                          f"stand-in legs {seen}", file=sys.stderr)
        return {
            "campaigns": len(self.reports),
            "rooms left": len(created_left),
            "SIP left on": sum(1 for r in chaos_rooms if r["sip_enabled"]),
            "borrowed rooms not restored": sum(
                1 for r in borrowed.values()
                if r["enable_dialout"] or r["allow_room_start"] or r["sip_enabled"]),
            "legs left up": sum(1 for leg in legs if leg["active"]),
            "wrong statuses": wrong,
            "double dials": sum(1 for n in per_user.values() if n > 1),
            "runs past deadline": late,
        }


def _consistent(target: Any, legs: list[dict]) -> bool:
    """The reported status agrees with what the stand-in did with this target's legs."""
    if target.status in ("canceled", "unknown"):
        return True  # stopped before the end, or honestly not known
    last = max(legs, key=lambda leg: leg["created_at"]) if legs else None
    if target.status == "answered":
        return any(leg.get("answered_at") for leg in legs)
    if last is None:
        return target.status == "failed"  # refused before any leg existed
    if last.get("answered_at"):
        return False
    code = last.get("sip_code")
    if target.status == "busy":
        return code in BUSY
    if target.status == "no_answer":
        return code in NO_ANSWER or last.get("end_reason") == "api-stop" or last["state"] == "stopped"
    return True  # rejected / failed: any non-answered end


async def soak(n: int, seed: int, parallel: int, daily_url: str, webhook_url: str) -> dict[str, int]:
    s = Soak(daily_url.removesuffix("/v1"), webhook_url, seed)
    await s.run(n, parallel)
    result = s.verdict()
    result["_troubles"] = dict(s.troubles)  # type: ignore[assignment]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("campaigns", type=int, nargs="?", default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=3)
    args = parser.parse_args()
    secret = new_webhook_secret()
    with LocalStack() as stack:
        api = os.environ.get("PREFECT_API_URL")
        if not api:
            api, _ui, _s = stack.prefect_server()
            os.environ["PREFECT_API_URL"] = api
        daily_url = stack.standin(rate_limit_scale=0, connect_delay=0.05, answer_delay=0.1, ring_timeout=2,
                                  hangup_after=0.5, seed=args.seed, fault_5xx=0.02, fault_duplicate=0.1,
                                  fault_reorder=0.1, fault_drop=0.03)
        webhook_url = stack.receiver(secret, api)
        os.environ.update(DAILY_API_KEY=STANDIN_DEV_KEY, DAILY_API_URL=daily_url, DAILY_WEBHOOK_SECRET=secret,
                          DAILY_RATE_LIMIT_SCALE="0")
        result = asyncio.run(soak(args.campaigns, args.seed, args.parallel, daily_url, webhook_url))
    troubles = result.pop("_troubles")
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key.ljust(width)}  {value}")
    print(f"{'troubles'.ljust(width)}  {troubles}")
    bad = ("rooms left", "SIP left on", "borrowed rooms not restored", "legs left up", "double dials")
    return 1 if any(result[k] for k in bad) else 0


if __name__ == "__main__":
    sys.exit(main())
