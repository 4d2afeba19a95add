"""Chaos soak: N randomized campaigns against the stand-in with faults, checked against its ground truth.

Each campaign gets random targets (answering, busy, no answer, far-end hang-up, not found), a
created or a borrowed room, and one random trouble:

* ``none``;
* ``cleanup-outage``: Daily answers 500 on the cleanup routes for 5-40 s;
* ``lost-start``: ``dialOut/start`` answers lost after the call was placed, presence failing too;
* ``cancel``: the flow is cancelled at a random moment;
* ``kill-9``: the campaign runs as a ``daily-sip run`` process, ``kill -9``-ed at a random moment;
  the sweep each ``daily-sip worker`` runs (`flows.sweeper.resident_sweep`, running in the soak)
  cleans up after it, and the soak reports the exposure: seconds from the kill until the stand-in
  shows its legs down and its room deleted or restored (max, p95; the promise is 90 s);
* ``lost-answer``: the next ``dialout.answered`` webhooks are dropped (the run must reconcile);
* ``late-webhooks``: ``dialout.*`` webhooks held back 1-8 s;
* ``slow-daily``: every request delayed by a random 0-1.5 s for a while.

Throughout, the stand-in duplicates, reorders and drops some webhooks and answers a few requests
with 5xx; the webhook receiver is ``kill -9``-ed and restarted on its port now and then; and when
the soak started its own Prefect server, that server is ``kill -9``-ed and restarted once, half-way,
while campaigns are running. After all campaigns the sweeper runs once; then the stand-in's own
state (``/_emulator/...``) is compared with what the runs reported.

``--pacer-restart``: the stand-in enforces Daily's real rate limits (``rate_limit_scale=1``), the
campaigns (in-process and ``daily-sip run`` alike) pace through one shared pacer
(``python -m daily_sip.pacer`` on a fixed port, ``DAILY_PACER_URL``, ``DAILY_RATE_LIMIT_SCALE=1``)
that keeps its book in ``--state-file <workdir>/pacer.json``. Half-way through the soak (from
campaign N/2 on, as soon as call starts wait for the pacer's window, i.e. Daily's window is full
and there is demand; after 30 s anyway) that pacer is ``kill -9``-ed and started again on the same
port within 0.5 s. The verdict adds the stand-in's 429s on ``POST /rooms/{name}/dialOut/start``
(from ``/_emulator/requests``), the pacer restarts, its downtime and the call starts waiting at
the kill; exit status 1 also on any such 429: a pacer that forgets what it granted before it died
is what makes Daily answer them. ``--pacer-memory`` runs the same with ``--state-file ''`` (the
book in memory only), to show what the state file is for.

Prints: campaigns, rooms left, SIP left on, borrowed rooms not restored, legs left up, wrong
statuses, double dials, runs past deadline (then the troubles drawn and the restarts done).
Exit status 1 if any leftover or double dial. Each wrong status and each late run is printed on
stderr with the trouble of its campaign (route and webhook faults are global, so a fault armed for
one campaign can hit its neighbours). At 200 campaigns (README, "Chaos soak"): 0 for every leftover
and double dial; the wrong statuses left are all a far end that answered and hung up within a
second whose ``dialout.answered`` was lost, reported ``ended_before_answer``.

    .venv/bin/python benchmarks/chaos.py [CAMPAIGNS] [--seed S] [--parallel P] [--no-restarts]
        [--troubles none,kill-9,...] [--receiver-kills SHARE] [--pacer-restart [--pacer-memory]]

Starts its own stand-in and receiver; uses the Prefect server at PREFECT_API_URL if set (then it
is not restarted), else starts one. Worker and flow-run-child kills are not part of it (see
tests/flows/test_sweeper.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from daily_sip.local_stack import STANDIN_DEV_KEY, LocalStack, new_webhook_secret

OUTCOMES = ["ok", "busy", "noanswer", "hangup", "notfound"]
CLEANUP_ROUTES = [
    "DELETE /rooms/{name}",
    "POST /rooms/{name}/dialOut/stop",
    "GET /rooms/{name}/presence",
    "POST /rooms/{name}",
]
TROUBLES = [
    "none",
    "cleanup-outage",
    "lost-start",
    "cancel",
    "kill-9",
    "lost-answer",
    "late-webhooks",
    "slow-daily",
]
DEADLINE = 25.0
# A run may take its deadline plus cleanup (which rides out the injected outages) before it counts as late.
LATE_AFTER = DEADLINE + 60.0
BUSY, NO_ANSWER = {486, 600}, {408, 480, 487}
# Receiver kills per `parallel` campaigns started.
RECEIVER_KILL_SHARE = 0.15
# A `daily-sip run` is killed this long after its room shows up in the stand-in (provisioning,
# ringing, on a call or cleaning up), or after STARTUP_LIMIT if it never gets that far.
KILL_WINDOW = (0.0, 15.0)
STARTUP_LIMIT = 60.0
# A killed run's legs and room are watched this long for the sweep (the promise is 90 s).
EXPOSURE_LIMIT = 180.0
# --pacer-restart: from campaign N/2 on, the pacer is killed as soon as call starts wait for its
# window (so Daily's window is full and there is demand), or after PACER_WAIT_LIMIT anyway, and
# started again on its port PACER_PAUSE after the kill.
PACER_WAIT_LIMIT = 30.0
PACER_PAUSE = (0.0, 0.5)
DIALOUT_START_ROUTE = "POST /rooms/{name}/dialOut/start"


class Restartable:
    """A child process of the soak that is killed with SIGKILL and started again on the same port."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], health: str, workdir: Path) -> None:
        self.name, self.cmd, self.env, self.health, self.workdir = name, cmd, env, health, workdir
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self.down_seconds: list[float] = []

    def start(self, timeout: float = 180) -> float:
        log = (self.workdir / f"{self.name}-{self.restarts}.log").open("w")
        self.proc = subprocess.Popen(
            self.cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            start_new_session=True,
        )
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {(self.workdir / log.name).read_text()[-1500:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.health, timeout=2).status_code < 500:
                    return time.monotonic() - started
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} not healthy after {timeout:.0f} s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    async def restart(self, pause: float) -> None:
        t0 = time.monotonic()
        self.kill()
        await asyncio.sleep(pause)
        self.restarts += 1
        await asyncio.to_thread(self.start)
        self.down_seconds.append(round(time.monotonic() - t0, 1))

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


class Soak:
    def __init__(
        self,
        root: str,
        webhook_url: str,
        seed: int,
        receiver: Restartable | None = None,
        prefect: Restartable | None = None,
        troubles: list[str] | None = None,
        receiver_kill_share: float = RECEIVER_KILL_SHARE,
        pacer: Restartable | None = None,
    ) -> None:
        self.pacer = pacer
        # Its own draws, so that the pacer mode leaves the campaigns of a seed as they were.
        self.pacer_rng = random.Random(seed + 1)
        self.pacer_waiting: list[int] = []
        self.trouble_kinds = troubles or TROUBLES
        self.receiver_kill_share = receiver_kill_share
        self.root, self.webhook_url = root, webhook_url
        self.rng = random.Random(seed)
        self.reports: list[Any] = []
        self.borrowed: list[str] = []
        self.troubles: Counter[str] = Counter()
        self.receiver, self.prefect = receiver, prefect
        self.workdir = Path(tempfile.mkdtemp(prefix="chaos-"))
        self.killed = 0
        self.exposures: list[asyncio.Task[float | None]] = []

    def emu(self, path: str, method: str = "GET", **body: Any) -> Any:
        r = httpx.request(method, f"{self.root}/_emulator/{path}", json=body or None, timeout=30)
        r.raise_for_status()
        return r.json()

    def campaign(self, i: int) -> tuple[dict[str, Any], Any]:
        from daily_sip.flows.campaign.model import Campaign

        n = self.rng.randint(2, 4)
        targets = [
            {"sip_uri": f"sip:{self.rng.choice(OUTCOMES)}-{i}-{k}@chaos.example.com"} for k in range(n)
        ]
        spec: dict[str, Any] = {
            "name": f"chaos-{i}",
            "targets": targets,
            "ring_timeout_seconds": 4,
            "after_answer": {"mode": "hang_up_after", "hold_seconds": self.rng.choice([0.5, 1.5, 3.0])},
            "success": {"min_answered_fraction": 0},
            "ready_timeout_seconds": 10,
            "deadline_seconds": DEADLINE,
            "redial": {"attempts": 2, "backoff_seconds": 0.5},
        }
        if self.rng.random() < 0.3:
            room = f"chaos-borrowed-{i}"
            r = httpx.post(
                f"{self.root}/v1/rooms",
                json={"name": room},
                headers={"Authorization": f"Bearer {STANDIN_DEV_KEY}"},
                timeout=30,
            )
            if r.status_code == 200:
                spec["room"] = room
                self.borrowed.append(room)
        return spec, Campaign.model_validate(spec)

    async def one(self, i: int) -> None:
        from daily_sip.flows.dial_campaign import dial_campaign

        spec, c = self.campaign(i)
        trouble = self.rng.choice(self.trouble_kinds)
        self.troubles[trouble] += 1
        if trouble == "kill-9":
            self.reports.append((trouble, await self.killed_run(i, spec)))
            return
        task = asyncio.create_task(dial_campaign(campaign=c, webhook_url=self.webhook_url, return_state=True))
        if trouble == "cleanup-outage":
            await asyncio.sleep(self.rng.uniform(1, 4))
            for route in CLEANUP_ROUTES:
                self.emu("faults", "POST", route=route, mode="error", seconds=self.rng.uniform(5, 40))
        elif trouble == "lost-start":
            self.emu(
                "faults",
                "POST",
                route="POST /rooms/{name}/dialOut/start",
                mode="lost",
                count=self.rng.randint(1, 2),
            )
            self.emu(
                "faults",
                "POST",
                route="GET /rooms/{name}/presence",
                mode="error",
                seconds=self.rng.uniform(0, 10),
            )
        elif trouble == "cancel":
            await asyncio.sleep(self.rng.uniform(0.2, 5))
            task.cancel()
        elif trouble == "lost-answer":
            self.emu(
                "faults",
                "POST",
                route="WEBHOOK dialout.answered",
                mode="drop",
                count=self.rng.randint(1, 2),
                seconds=30,
            )
        elif trouble == "late-webhooks":
            for kind in ("connected", "answered", "stopped", "error"):
                self.emu(
                    "faults",
                    "POST",
                    route=f"WEBHOOK dialout.{kind}",
                    mode="delay",
                    delay=1,
                    jitter=7,
                    seconds=self.rng.uniform(3, 15),
                )
        elif trouble == "slow-daily":
            self.emu(
                "faults",
                "POST",
                route="*",
                mode="delay",
                delay=0,
                jitter=1.5,
                seconds=self.rng.uniform(3, 10),
            )
        try:
            state = await task
            report = await state.aresult(raise_on_failure=False)
        except asyncio.CancelledError:
            report = None
        except Exception as exc:  # a run that raised instead of reporting is itself a finding
            print(f"campaign {i}: raised {type(exc).__name__}: {exc}", file=sys.stderr)
            report = None
        self.reports.append((trouble, report))

    async def killed_run(self, i: int, spec: dict[str, Any]) -> Any:
        """Run the campaign as `daily-sip run`, kill -9 it at a random moment; its report if it ended."""
        from daily_sip.flows.report.model import CampaignReport

        path = self.workdir / f"chaos-{i}.json"
        path.write_text(json.dumps(spec))
        out = self.workdir / f"chaos-{i}.report.json"
        exe = Path(sys.executable).with_name("daily-sip")
        with (self.workdir / f"chaos-{i}.log").open("w") as log:
            proc = await asyncio.create_subprocess_exec(
                str(exe),
                "run",
                str(path),
                "--json-out",
                str(out),
                "--webhook-url",
                self.webhook_url,
                "--no-ui-link",
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        kill_after = self.rng.uniform(*KILL_WINDOW)
        ended = asyncio.ensure_future(proc.wait())
        # The clock starts once the run has turned something on: a kill before that proves nothing.
        on = asyncio.ensure_future(self.started(i, spec))
        await asyncio.wait({ended, on}, timeout=STARTUP_LIMIT, return_when=asyncio.FIRST_COMPLETED)
        on.cancel()
        if not ended.done():
            await asyncio.wait({ended}, timeout=kill_after)
        if not ended.done():
            os.killpg(proc.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            await ended
            self.killed += 1
            self.exposures.append(asyncio.create_task(self.exposure(i, spec, killed_at)))
            return None
        return CampaignReport.model_validate_json(out.read_text()) if out.exists() else None

    async def exposure(self, i: int, spec: dict[str, Any], killed_at: float) -> float | None:
        """Seconds from the kill until the stand-in shows campaign ``i``'s legs down and its room
        deleted (or, borrowed, SIP and dial-out off); None if not within EXPOSURE_LIMIT."""
        borrowed = spec.get("room")
        while time.monotonic() - killed_at < EXPOSURE_LIMIT:
            rooms, legs = (
                await asyncio.to_thread(self.emu, "rooms"),
                await asyncio.to_thread(self.emu, "legs"),
            )
            mine = [r for r in rooms if r["name"] == borrowed or r["name"].startswith(f"chaos-{i}-")]
            up = [leg for leg in legs if leg["active"] and leg["room"] in {r["name"] for r in mine}]
            if not up and all(
                r["name"] == borrowed and not (r["sip_enabled"] or r["enable_dialout"]) for r in mine
            ):
                return time.monotonic() - killed_at
            await asyncio.sleep(0.5)
        return None

    async def started(self, i: int, spec: dict[str, Any]) -> None:
        """Return once the stand-in shows campaign ``i``'s room created, or its borrowed room SIP-enabled."""
        while True:
            rooms = await asyncio.to_thread(self.emu, "rooms")
            if any(
                r["name"].startswith(f"chaos-{i}-") or (r["name"] == spec.get("room") and r["sip_enabled"])
                for r in rooms
            ):
                return
            await asyncio.sleep(0.3)

    async def run(self, n: int, parallel: int) -> None:
        """Keep ``parallel`` campaigns in flight; restart the receiver now and then and Prefect half-way."""
        slots = asyncio.Semaphore(parallel)
        restarts: list[asyncio.Task] = []

        async def campaign(i: int) -> None:
            async with slots:
                if i == n // 2 and self.prefect is not None:
                    restarts.append(
                        asyncio.create_task(
                            self.later(self.rng.uniform(2, 10), self.prefect, self.rng.uniform(0, 3))
                        )
                    )
                if i == n // 2 and self.pacer is not None:
                    restarts.append(asyncio.create_task(self.pacer_restart(self.pacer)))
                # One receiver kill per `parallel` campaigns on average at the default share.
                if self.receiver is not None and self.rng.random() < self.receiver_kill_share / parallel:
                    restarts.append(
                        asyncio.create_task(
                            self.later(self.rng.uniform(0, 10), self.receiver, self.rng.uniform(0.2, 4))
                        )
                    )
                await self.one(i)

        from daily_sip.flows.sweeper import resident_sweep, sweep_ledgers

        # The sweep each `daily-sip worker` runs: killed runs are cleaned up while the soak goes on.
        sweeper = asyncio.create_task(resident_sweep())
        await asyncio.gather(*(campaign(i) for i in range(n)))
        await asyncio.gather(*restarts)
        self.exposed = [await t for t in self.exposures]
        sweeper.cancel()
        self.emu("faults", "DELETE")
        await sweep_ledgers(grace_seconds=0)

    async def pacer_restart(self, pacer: Restartable) -> None:
        """``kill -9`` the pacer while call starts wait for its window (a successor that forgot
        the window would grant them at once: 429s), or after PACER_WAIT_LIMIT anyway."""
        waiting, until = 0, time.monotonic() + PACER_WAIT_LIMIT
        while not waiting and time.monotonic() < until:
            await asyncio.sleep(0.1)
            with contextlib.suppress(httpx.HTTPError, ValueError):
                books = (await asyncio.to_thread(httpx.get, pacer.health, timeout=2)).json()["books"]
                waiting = sum(b["waiting"] for k, b in books.items() if k.endswith("/dialout-start"))
        self.pacer_waiting.append(waiting)
        await pacer.restart(self.pacer_rng.uniform(*PACER_PAUSE))

    @staticmethod
    async def later(delay: float, proc: Restartable, pause: float) -> None:
        await asyncio.sleep(delay)
        await proc.restart(pause)

    def verdict(self) -> dict[str, int]:
        rooms = self.emu("rooms")
        legs = self.emu("legs")
        chaos_rooms = [r for r in rooms if r["name"].startswith("chaos-")]
        created_left = [r for r in chaos_rooms if not r["name"].startswith("chaos-borrowed-")]
        borrowed = {r["name"]: r for r in chaos_rooms if r["name"] in self.borrowed}
        per_user = Counter(leg["userId"] for leg in legs if leg.get("userId"))
        wrong = late = 0
        for trouble, report in self.reports:
            if report is None or not hasattr(report, "targets"):
                continue
            took = (report.finished_at - report.started_at).total_seconds() if report.finished_at else 0.0
            if took > LATE_AFTER:
                late += 1
                print(f"past deadline: {report.campaign} ({trouble}) took {took:.0f} s", file=sys.stderr)
            tag = (report.flow_run_id or "").replace("-", "")[:8]
            for t in report.targets:
                mine = [leg for leg in legs if (leg.get("userId") or "").startswith(f"{tag}-{t.index}-")]
                if not _consistent(t, mine):
                    wrong += 1
                    seen = [(leg["state"], leg.get("sip_code"), leg.get("end_reason")) for leg in mine]
                    print(
                        f"wrong status ({trouble}): {t.sip_uri} reported {t.status} "
                        f"({t.error or t.detail}); stand-in legs {seen}",
                        file=sys.stderr,
                    )
        for user, count in per_user.items():
            if count > 1:
                print(f"double dial: userId {user} dialled {count} times", file=sys.stderr)
        for r in created_left:
            print(f"room left: {r['name']}", file=sys.stderr)
        for leg in legs:
            if leg["active"]:
                print(f"leg left up: {leg.get('userId')} in {leg['room']}", file=sys.stderr)
        done = sorted(e for e in getattr(self, "exposed", []) if e is not None)
        never = sum(1 for e in getattr(self, "exposed", []) if e is None)
        exposure = (
            f"max {done[-1]:.0f} s, p95 {done[min(len(done) - 1, int(len(done) * 0.95))]:.0f} s"
            + (f", {never} past {EXPOSURE_LIMIT:.0f} s" if never else "")
            if done
            else (f"{never} past {EXPOSURE_LIMIT:.0f} s" if never else "-")
        )
        return {
            "campaigns": len(self.reports),
            "killed runs exposed": exposure,
            "rooms left": len(created_left),
            "SIP left on": sum(1 for r in chaos_rooms if r["sip_enabled"]),
            "borrowed rooms not restored": sum(
                1
                for r in borrowed.values()
                if r["enable_dialout"] or r["allow_room_start"] or r["sip_enabled"]
            ),
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


async def soak(
    n: int,
    seed: int,
    parallel: int,
    daily_url: str,
    webhook_url: str,
    receiver: Restartable | None = None,
    prefect: Restartable | None = None,
    troubles: list[str] | None = None,
    receiver_kill_share: float = RECEIVER_KILL_SHARE,
    pacer: Restartable | None = None,
) -> dict[str, Any]:
    s = Soak(
        daily_url.removesuffix("/v1"),
        webhook_url,
        seed,
        receiver,
        prefect,
        troubles,
        receiver_kill_share,
        pacer,
    )
    await s.run(n, parallel)
    result: dict[str, Any] = s.verdict()
    if pacer is not None:
        by_route = s.emu("requests")["by_route"]
        result["429 on dialOut/start"] = by_route.get(DIALOUT_START_ROUTE, {}).get("429", 0)
    result["_troubles"] = dict(s.troubles)
    result["_restarts"] = {
        "runs killed (kill -9)": s.killed,
        "receiver restarts": receiver.restarts if receiver else 0,
        "receiver down (s)": receiver.down_seconds if receiver else [],
        "Prefect server restarts": prefect.restarts if prefect else 0,
        "Prefect server down (s)": prefect.down_seconds if prefect else [],
    }
    if pacer is not None:
        result["_restarts"]["pacer restarts (kill -9)"] = pacer.restarts
        result["_restarts"]["pacer down (s)"] = pacer.down_seconds
        result["_restarts"]["dial starts waiting at the kill"] = s.pacer_waiting
    return result


def _prefect(workdir: Path) -> tuple[str, Restartable]:
    from daily_sip.local_stack import free_port

    port = free_port()
    home = (workdir / "prefect-home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).with_name("prefect")
    api = f"http://127.0.0.1:{port}/api"
    server = Restartable(
        "prefect-server",
        [str(exe), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_API_URL": ""},
        f"{api}/health",
        workdir,
    )
    return api, server


def _receiver(workdir: Path, secret: str, api: str) -> tuple[str, Restartable]:
    from daily_sip.local_stack import free_port

    port = free_port()
    receiver = Restartable(
        "receiver",
        [sys.executable, "-m", "daily_sip.receiver", "--port", str(port)],
        {"DAILY_WEBHOOK_SECRET": secret, "PREFECT_API_URL": api},
        f"http://127.0.0.1:{port}/healthz",
        workdir,
    )
    return port, receiver


def _pacer(workdir: Path, memory_only: bool) -> tuple[str, Restartable]:
    """The shared pacer on a fixed port (a restart must come back where its clients look)."""
    from daily_sip.local_stack import free_port

    port = free_port()
    state = "" if memory_only else str((workdir / "pacer.json").resolve())
    pacer = Restartable(
        "pacer",
        [sys.executable, "-m", "daily_sip.pacer", "--port", str(port), "--state-file", state],
        {},
        f"http://127.0.0.1:{port}/healthz",
        workdir,
    )
    return f"http://127.0.0.1:{port}", pacer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("campaigns", type=int, nargs="?", default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=3)
    parser.add_argument("--no-restarts", action="store_true", help="no receiver / Prefect server restarts")
    parser.add_argument(
        "--troubles",
        default=",".join(TROUBLES),
        help=f"comma-separated kinds to draw from (default: all of {','.join(TROUBLES)})",
    )
    parser.add_argument(
        "--receiver-kills",
        type=float,
        default=RECEIVER_KILL_SHARE,
        help="receiver kills (and restarts) per PARALLEL campaigns started",
    )
    parser.add_argument(
        "--pacer-restart",
        action="store_true",
        help="Daily's real rate limits, campaigns paced by a shared pacer that is kill -9-ed and "
        "restarted on its port half-way; exit 1 on any 429 on dialOut/start",
    )
    parser.add_argument(
        "--pacer-memory",
        action="store_true",
        help="with --pacer-restart: the pacer keeps its book in memory only (--state-file '')",
    )
    args = parser.parse_args()
    if args.pacer_memory and not args.pacer_restart:
        parser.error("--pacer-memory needs --pacer-restart")
    troubles = [t.strip() for t in args.troubles.split(",") if t.strip()]
    unknown = sorted(set(troubles) - set(TROUBLES))
    if unknown:
        parser.error(f"unknown trouble {', '.join(unknown)}; known: {', '.join(TROUBLES)}")
    secret = new_webhook_secret()
    workdir = Path(tempfile.mkdtemp(prefix="chaos-stack-"))
    prefect = pacer = None
    # 0: the stand-in's limits off and no pacing; 1: Daily's limits, paced by the shared pacer.
    scale = 1 if args.pacer_restart else 0
    with LocalStack(workdir=workdir) as stack:
        api = os.environ.get("PREFECT_API_URL")
        if not api:
            api, prefect = _prefect(workdir)
            prefect.start()
            os.environ["PREFECT_API_URL"] = api
        daily_url = stack.standin(
            rate_limit_scale=scale,
            connect_delay=0.05,
            answer_delay=0.1,
            ring_timeout=2,
            hangup_after=0.5,
            seed=args.seed,
            fault_5xx=0.02,
            fault_duplicate=0.1,
            fault_reorder=0.1,
            fault_drop=0.03,
            presence_lag=15,  # Daily's: "up to ~15 s" behind (a third party measured 10-25 s)
        )
        _port, receiver = _receiver(workdir, secret, api)
        try:
            receiver.start()
            webhook_url = _webhook_url(receiver)
            if args.pacer_restart:
                pacer_url, pacer = _pacer(workdir, args.pacer_memory)
                pacer.start()
                os.environ["DAILY_PACER_URL"] = pacer_url
            os.environ.update(
                DAILY_API_KEY=STANDIN_DEV_KEY,
                DAILY_API_URL=daily_url,
                DAILY_WEBHOOK_SECRET=secret,
                DAILY_RATE_LIMIT_SCALE=str(scale),
            )
            result = asyncio.run(
                soak(
                    args.campaigns,
                    args.seed,
                    args.parallel,
                    daily_url,
                    webhook_url,
                    None if args.no_restarts else receiver,
                    None if args.no_restarts else prefect,
                    troubles,
                    args.receiver_kills,
                    pacer,
                )
            )
        finally:
            receiver.close()
            if pacer is not None:
                pacer.close()
            if prefect is not None:
                prefect.close()
    troubles, restarts = result.pop("_troubles"), result.pop("_restarts")
    width = max(len(k) for k in (*result, *restarts))
    for key, value in result.items():
        print(f"{key.ljust(width)}  {value}")
    print(f"{'troubles'.ljust(width)}  {troubles}")
    for key, value in restarts.items():
        print(f"{key.ljust(width)}  {value}")
    bad = ("rooms left", "SIP left on", "borrowed rooms not restored", "legs left up", "double dials")
    bad += ("429 on dialOut/start",) if pacer is not None else ()
    return 1 if any(result[k] for k in bad) else 0


def _webhook_url(receiver: Restartable) -> str:
    log = (receiver.workdir / "receiver-0.log").read_text().splitlines()
    return next(line.strip() for line in log if line.startswith("http"))


if __name__ == "__main__":
    sys.exit(main())
