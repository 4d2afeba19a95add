"""The plain-script peer of the fleet: the same Daily work with asyncio + httpx and nothing else.

M campaigns x K targets in one process, no Prefect: per campaign, create the room with SIP dial-in
and REST dial-out allowed (the properties `flows/provision/room.py` sets), start a dial-out per
target (at most 4 legs at once, the flow's capacity under Daily's session limit of 5 with one
dial-in endpoint), wait for each leg's ``dialout.answered`` webhook, hold, hang up, wait for
``dialout.stopped``, delete the room. Every Daily call of a rate class waits for ONE exact sliding
window shared by all campaigns (a call counts from when it is sent until its answer is back, as
`daily_sip.pacer.book` keeps it); webhooks arrive at the peer's own HTTP endpoint, which checks
Daily's HMAC signature with `daily_sip.receiver.signing` and turns anything else away with 401.

Targets and hold are the fleet's (``benchmarks/fleet.py``'s ``campaign()``), and so is the bound.

    .venv/bin/python benchmarks/peer.py --campaigns 4 --targets 2 --rate-scale 10   # own stand-in
    .venv/bin/python benchmarks/peer.py --daily-url http://127.0.0.1:PORT/v1 --standin-pid PID

Prints a table and, last, one JSON line (also written to ``--json-out``). CPU is this process's
own (``getrusage``) from the webhook registration to the last room deleted, imports and start-up
apart; the stand-in's CPU over the same span is shown (``--standin-pid``) and counted nowhere.
Peak RSS is the process's VmHWM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import secrets
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr

from daily_sip.local_stack import STANDIN_DEV_KEY, LocalStack, new_webhook_secret
from daily_sip.receiver.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, Verifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet import _pct, bound_seconds, campaign, tree_cpu

# Daily's classes (https://docs.daily.co/reference/rest-api, "Rate limits"), as `tasks/ratelimit.py`
# and the stand-in keep them; each local window 1 % longer, as the project's (clock rates only).
DIALOUT_START = ((5, 5.0),)
ROOM_DELETE = ((2, 1.0), (50, 30.0))
DEFAULT = ((20, 1.0), (100, 5.0))
MARGIN = 0.01
# The flow's leg capacity: Daily's default max_sip_pstn_sessions_per_room (5) less the one SIP
# dial-in endpoint a campaign room reserves (`Campaign.leg_capacity`).
LEGS_PER_ROOM = 4
RING_TIMEOUT = 30.0  # the fleet campaigns' ring_timeout_seconds
STOP_TIMEOUT = 30.0
DEADLINE_SECONDS = 3600  # the fleet campaigns' deadline_seconds (room exp and idle timeout)
IDLE_MARGIN_SECONDS = 120  # flows/provision/room.py
CREATED_ROOM_EXTRA_SECONDS = 3600  # flows/provision/room.py
AUDIO_CODECS = ["OPUS", "G722", "PCMU", "PCMA"]  # the campaign's default audio codecs
# What a campaign's webhook listens to (tasks/webhooks.py CAMPAIGN_EVENT_TYPES), so the stand-in
# sends the peer the same events it sends the project's receiver.
EVENT_TYPES = [
    "dialout.connected",
    "dialout.answered",
    "dialout.stopped",
    "dialout.error",
    "dialout.warning",
    "dialin.ready",
    "dialin.connected",
    "dialin.stopped",
    "dialin.error",
    "dialin.warning",
    "meeting.started",
    "meeting.ended",
]


# -- pacing ----------------------------------------------------------------------------------------


class SlidingWindow:
    """Every ``(count, seconds)`` window of one rate class, kept exactly for all campaigns.

    A call may be counted by Daily anywhere between its sending and its answer, so it counts here
    from when it is let go until its answer is back, and then for ``seconds`` more. A call is let
    go when fewer than ``count`` calls are in flight or were answered less than ``seconds`` ago.
    Waiters go in the order they asked (``asyncio.Lock`` is fair).
    """

    def __init__(self, windows: tuple[tuple[int, float], ...], scale: float) -> None:
        self.windows = tuple((max(1, round(n * scale)), s * (1 + MARGIN)) for n, s in windows)
        self.longest = max(s for _, s in self.windows)
        self.in_flight = 0
        self.answered: deque[float] = deque()  # answer times, oldest first (monotonic)
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()

    def wait(self, now: float) -> float:
        """Seconds until one more call fits (inf: not before an answer comes back)."""
        while self.answered and self.answered[0] <= now - self.longest:
            self.answered.popleft()
        until = now
        for count, seconds in self.windows:
            recent = [t for t in self.answered if t > now - seconds]
            over = self.in_flight + len(recent) - count  # how many of them must age out first
            if over >= 0:
                if over >= len(recent):
                    return float("inf")
                until = max(until, recent[over] + seconds)
        return until - now

    async def acquire(self) -> None:
        async with self._lock:
            while (wait := self.wait(time.monotonic())) > 0:
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), None if wait == float("inf") else wait)
            self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1
        self.answered.append(time.monotonic())
        self._changed.set()


class Daily:
    """Daily's REST API through one httpx client; every call waits for its class's window."""

    def __init__(self, base_url: str, api_key: str, scale: float) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(15.0, connect=5.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=100),
        )
        self.scale = scale
        self.windows = {
            "dialout-start": SlidingWindow(DIALOUT_START, scale),
            "room-delete": SlidingWindow(ROOM_DELETE, scale),
            "default": SlidingWindow(DEFAULT, scale),
        }
        self.rate_limited = 0

    async def call(self, rate: str, method: str, path: str, body: Any = None) -> httpx.Response:
        """One call, paced; a 429 (which should not happen) is counted and retried a window later."""
        window = self.windows[rate]
        for _ in range(5):
            if self.scale > 0:
                await window.acquire()
            try:
                response = await self.http.request(method, path, json=body)
            finally:
                if self.scale > 0:
                    window.release()
            if response.status_code != 429:
                return response
            self.rate_limited += 1
            await asyncio.sleep(window.longest)
        return response

    async def aclose(self) -> None:
        await self.http.aclose()


# -- the webhook endpoint --------------------------------------------------------------------------


@dataclass
class Leg:
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    error: str | None = None


class Endpoint:
    """A bare ASGI app for Daily's webhooks: signature checked first, then routed to its leg."""

    def __init__(self, secret: str, max_age_seconds: float | None = 300) -> None:
        self.verifier = Verifier(SecretStr(secret), max_age_seconds)
        self.legs: dict[str, Leg] = {}  # by the userId the peer gave the dial-out
        self.seen: set[str] = set()
        self.latency: dict[str, list[float]] = {}  # room -> seconds from Daily's send to here
        self.accepted = self.duplicates = self.rejected = self.pings = 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["method"] != "POST":
            await _answer(send, 405, {"error": "POST only"})
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        reason = self.verifier.check(
            headers.get(TIMESTAMP_HEADER.lower()), headers.get(SIGNATURE_HEADER.lower()), body, time.time()
        )
        if reason is not None:
            self.rejected += 1
            await _answer(send, 401, {"error": reason})
            return
        try:
            envelope = json.loads(body)
        except ValueError:
            await _answer(send, 400, {"error": "not JSON"})
            return
        if not isinstance(envelope, dict) or "type" not in envelope:
            self.pings += 1  # Daily's verification ping, {"test": "test"}
        else:
            self.take(envelope, time.time())
        await _answer(send, 200, {"ok": True})

    def take(self, envelope: dict, received: float) -> None:
        event_id = str(envelope.get("id"))
        if event_id in self.seen:
            self.duplicates += 1
            return
        self.seen.add(event_id)
        self.accepted += 1
        payload = envelope.get("payload") or {}
        sent = envelope.get("event_ts")
        if isinstance(sent, int | float):
            self.latency.setdefault(str(payload.get("room")), []).append(received - float(sent))
        leg = self.legs.get(payload.get("user_id") or "")
        if leg is None:
            return
        kind = envelope["type"]
        if kind == "dialout.answered":
            leg.answered.set()
        elif kind == "dialout.error":
            leg.error = str(payload.get("error_msg") or "dialout.error")
            leg.ended.set()
            leg.answered.set()
        elif kind == "dialout.stopped":
            leg.ended.set()
            leg.answered.set()


async def _answer(send: Any, status: int, body: dict) -> None:
    raw = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


class _Server(uvicorn.Server):
    def capture_signals(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()  # the peer handles its own signals


@contextlib.asynccontextmanager
async def serving(endpoint: Endpoint, host: str = "127.0.0.1"):
    """Serve ``endpoint`` on a free port of ``host`` in this event loop; yields its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    config = uvicorn.Config(endpoint, lifespan="off", log_level="warning", access_log=False)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}/webhook"
    finally:
        server.should_exit = True
        await task
        sock.close()


# -- the work --------------------------------------------------------------------------------------


def room_properties() -> dict[str, Any]:
    """What `flows/provision/room.py` sets on a room it creates for a default campaign."""
    return {
        "enable_dialout": True,
        "dialout_config": {
            "allow_room_start": True,
            "max_idle_timeout_sec": DEADLINE_SECONDS + IDLE_MARGIN_SECONDS,
        },
        "sip": {
            "sip_mode": "dial-in",
            "display_name": "SIP caller",
            "num_endpoints": 1,
            "video": False,
            "codecs": {"audio": AUDIO_CODECS},
        },
        "exp": int(time.time() + DEADLINE_SECONDS + CREATED_ROOM_EXTRA_SECONDS),
        "eject_at_room_exp": True,
    }


@dataclass
class Tally:
    answered: int = 0
    stopped: int = 0
    failed: list[str] = field(default_factory=list)
    rooms_deleted: int = 0


async def dial_one(daily: Daily, hooks: Endpoint, room: str, user_id: str, uri: str, hold: float) -> str:
    """One leg: start, answered, hold, stop, stopped. Returns "" when it went so, else what failed."""
    leg = hooks.legs[user_id] = Leg()
    body = {"sipUri": uri, "userId": user_id, "video": False, "codecs": {"audio": AUDIO_CODECS}}
    started = await daily.call("dialout-start", "POST", f"/rooms/{room}/dialOut/start", body)
    if started.status_code != 200:
        return f"start: HTTP {started.status_code} {started.text[:120]}"
    session = started.json()["sessionId"]
    try:
        await asyncio.wait_for(leg.answered.wait(), RING_TIMEOUT)
    except TimeoutError:
        leg.error = f"no dialout.answered within {RING_TIMEOUT:.0f} s"
    if leg.error is None:
        await asyncio.sleep(hold)
    if not leg.ended.is_set():
        stop = await daily.call("default", "POST", f"/rooms/{room}/dialOut/stop", {"sessionId": session})
        if stop.status_code != 200 and not leg.ended.is_set():
            return f"stop: HTTP {stop.status_code} {stop.text[:120]}"
        try:
            await asyncio.wait_for(leg.ended.wait(), STOP_TIMEOUT)
        except TimeoutError:
            return f"no dialout.stopped within {STOP_TIMEOUT:.0f} s"
    return leg.error or ""


async def one_campaign(
    daily: Daily, hooks: Endpoint, index: int, targets: int, tag: str, tally: Tally
) -> None:
    spec = campaign(index, targets)
    hold = spec["after_answer"]["hold_seconds"]
    room = f"peer-{tag}-{index:03d}"
    made = await daily.call("default", "POST", "/rooms", {"name": room, "properties": room_properties()})
    if made.status_code != 200:
        tally.failed += [f"{room}: create: HTTP {made.status_code} {made.text[:120]}"] * targets
        return
    slots = asyncio.Semaphore(LEGS_PER_ROOM)

    async def leg(t: int, uri: str) -> None:
        async with slots:
            outcome = await dial_one(daily, hooks, room, f"{room}-{t}", uri, hold)
        if outcome:
            tally.failed.append(f"{room}-{t}: {outcome}")
        else:
            tally.answered += 1
            tally.stopped += 1

    try:
        await asyncio.gather(*(leg(t, target["sip_uri"]) for t, target in enumerate(spec["targets"])))
    finally:
        gone = await daily.call("room-delete", "DELETE", f"/rooms/{room}")
        tally.rooms_deleted += gone.status_code == 200


async def point_webhook(daily: Daily, url: str, secret: str) -> dict | None:
    """Point the domain's one webhook at ``url``; returns what it was before (None: there was none)."""
    hooks = (await daily.call("default", "GET", "/webhooks")).json()
    hooks = hooks.get("data", hooks) if isinstance(hooks, dict) else hooks
    settings = {"url": url, "hmac": secret, "eventTypes": EVENT_TYPES, "retryType": "exponential"}
    if hooks:
        before = hooks[0]
        answer = await daily.call("default", "POST", f"/webhooks/{before['uuid']}", settings)
    else:
        before = None
        answer = await daily.call("default", "POST", "/webhooks", settings)
    if answer.status_code != 200:
        raise RuntimeError(f"could not point the webhook at {url}: HTTP {answer.status_code} {answer.text}")
    return before


async def put_webhook_back(daily: Daily, before: dict | None) -> str:
    """Give the domain its webhook back as it was (or none, as there was none)."""
    hooks = (await daily.call("default", "GET", "/webhooks")).json()
    hooks = hooks.get("data", hooks) if isinstance(hooks, dict) else hooks
    if before is None:
        for hook in hooks:
            await daily.call("default", "DELETE", f"/webhooks/{hook['uuid']}")
        return "deleted (there was none before)"
    settings = {
        k: before[k]
        for k in ("url", "hmac", "eventTypes", "retryType", "basicAuth")
        if before.get(k) is not None
    }
    answer = await daily.call("default", "POST", f"/webhooks/{before['uuid']}", settings)
    if answer.status_code == 200:
        return f"restored to {before['url']}"
    # Its old URL no longer answers Daily's ping (the fleet's receiver is gone): leave none behind.
    await daily.call("default", "DELETE", f"/webhooks/{before['uuid']}")
    return f"deleted: the old URL did not answer Daily's ping (HTTP {answer.status_code})"


def _rss_mb() -> float:
    """This process's peak RSS (VmHWM), MB.

    Not ``ru_maxrss``: Linux carries the parent's peak over fork + exec into it, so a peer started
    by fleet.py (Prefect imported) would report fleet.py's RSS rather than its own.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(
    daily_url: str,
    campaigns: int,
    targets: int,
    rate_scale: float,
    api_key: str = STANDIN_DEV_KEY,
    standin_pid: int | None = None,
    restore_webhook: bool = True,
) -> dict:
    """The peer's whole run against the Daily (stand-in) at ``daily_url``; returns its figures."""
    startup_cpu = _cpu()
    root = daily_url.removesuffix("/").removesuffix("/v1")
    secret = new_webhook_secret()
    hooks = Endpoint(secret)
    daily = Daily(daily_url, api_key, rate_scale)
    tally = Tally()
    tag = secrets.token_hex(3)
    dials = campaigns * targets
    try:
        async with serving(hooks) as url, httpx.AsyncClient(timeout=30) as emulator:
            requests0 = (await emulator.get(f"{root}/_emulator/requests")).json()
            cpu0, standin0 = _cpu(), tree_cpu(standin_pid) if standin_pid else None
            started = time.monotonic()
            before = await point_webhook(daily, url, secret)
            try:
                await asyncio.gather(
                    *(one_campaign(daily, hooks, i, targets, tag, tally) for i in range(campaigns))
                )
            finally:
                makespan = time.monotonic() - started
                cpu = _cpu() - cpu0
                standin_cpu = tree_cpu(standin_pid) - standin0 if standin_pid else None
                restored = await put_webhook_back(daily, before) if restore_webhook else "left pointing here"
            requests1 = (await emulator.get(f"{root}/_emulator/requests")).json()
            rooms = (await emulator.get(f"{root}/_emulator/rooms")).json()
            legs = (await emulator.get(f"{root}/_emulator/legs")).json()
    finally:
        await daily.aclose()
    ours = f"peer-{tag}-"
    by_room = [sorted(v) for room, v in hooks.latency.items() if room.startswith(ours)]
    every = sorted(x for v in by_room for x in v)
    bound = bound_seconds(dials, rate_scale)
    routes = {
        route: {s: n - requests0.get("by_route", {}).get(route, {}).get(s, 0) for s, n in counts.items()}
        for route, counts in requests1.get("by_route", {}).items()
    }
    routes = {r: {s: n for s, n in c.items() if n} for r, c in routes.items()}
    return {
        "kind": "peer",
        "campaigns": campaigns,
        "targets": targets,
        "rate_scale": rate_scale,
        "hold_seconds": campaign(0, 1)["after_answer"]["hold_seconds"],
        "dials": dials,
        "completed_dials": tally.answered,
        "failed": tally.failed[:5],
        "failed_count": len(tally.failed),
        "rooms_deleted": tally.rooms_deleted,
        "rate_limited_429": requests1.get("rate_limited", 0) - requests0.get("rate_limited", 0),
        "rate_limited_429_seen_by_peer": daily.rate_limited,
        "requests_by_route": {r: c for r, c in routes.items() if c},
        "makespan_seconds": round(makespan, 2),
        "bound_seconds": bound,
        "makespan_over_bound": round(makespan / bound, 3),
        "cpu_seconds": {
            "peer_process": round(cpu, 3),
            "standin": round(standin_cpu, 3) if standin_cpu is not None else None,
            "peer_startup_not_counted": round(startup_cpu, 3),
        },
        "cpu_ms_per_dial": {
            "peer_process": round(1000 * cpu / dials, 1),
            "standin": round(1000 * standin_cpu / dials, 1) if standin_cpu is not None else None,
        },
        "peak_rss_mb": _rss_mb(),
        "webhook_to_handler_latency_s": {
            "events": len(every),
            "p50": round(_pct(every, 0.5), 4) if every else None,
            "p95": round(_pct(every, 0.95), 4) if every else None,
            # Aggregated as fleet.py aggregates its runs: per campaign first, then over campaigns.
            "p50_median_of_campaigns": round(statistics.median(v[len(v) // 2] for v in by_room), 4)
            if by_room
            else None,
            "p95_95th_of_campaigns": round(_pct([_pct(v, 0.95) for v in by_room], 0.95), 4)
            if by_room
            else None,
        },
        "webhooks": {
            "accepted": hooks.accepted,
            "duplicates": hooks.duplicates,
            "rejected": hooks.rejected,
            "pings": hooks.pings,
            "afterwards": restored,
        },
        "rooms_left": sum(1 for r in rooms if str(r.get("name", "")).startswith(ours)),
        "legs_left_up": sum(1 for leg in legs if leg.get("active") and str(leg.get("room")).startswith(ours)),
        "rooms_left_on_standin": len(rooms),
        "legs_left_up_on_standin": sum(1 for leg in legs if leg.get("active")),
    }


def table(result: dict) -> str:
    cpu, lat = result["cpu_ms_per_dial"], result["webhook_to_handler_latency_s"]
    rows = [
        (
            "dials completed",
            f"{result['completed_dials']} / {result['dials']} ({result['failed_count']} failed)",
        ),
        ("makespan", f"{result['makespan_seconds']:.1f} s (wall)"),
        ("bound (dials / Daily's start rate)", f"{result['bound_seconds']:.1f} s"),
        ("makespan / bound", f"{result['makespan_over_bound']:.3f}"),
        ("429s answered by the stand-in", str(result["rate_limited_429"])),
        ("CPU per dial: peer process", f"{cpu['peer_process']} ms"),
        (
            "CPU per dial: stand-in (not counted)",
            f"{cpu['standin']} ms" if cpu["standin"] is not None else "n/a",
        ),
        ("peak RSS of the peer", f"{result['peak_rss_mb']} MB"),
        (
            "webhook -> handler latency",
            f"p50 {lat['p50']} s, p95 {lat['p95']} s over {lat['events']} events",
        ),
        (
            "  per campaign, as fleet.py aggregates",
            f"p50 {lat['p50_median_of_campaigns']} s (median), p95 {lat['p95_95th_of_campaigns']} s",
        ),
        (
            "webhooks accepted / rejected",
            f"{result['webhooks']['accepted']} / {result['webhooks']['rejected']}; afterwards "
            f"{result['webhooks']['afterwards']}",
        ),
        ("rooms / legs left on the stand-in", f"{result['rooms_left']} / {result['legs_left_up']}"),
    ]
    width = max(len(r[0]) for r in rows)
    title = (
        f"peer: {result['campaigns']} campaigns x {result['targets']} targets, one process, "
        f"Daily limits x{result['rate_scale']:g}"
    )
    return "\n".join([title, *(f"  {name:<{width}}  {value}" for name, value in rows)])


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaigns", "-m", type=int, default=20)
    parser.add_argument("--targets", "-k", type=int, default=5)
    parser.add_argument("--rate-scale", type=float, default=1.0, help="Daily's limits times this")
    parser.add_argument("--daily-url", help="the stand-in's /v1 URL; default: start one with --rate-scale")
    parser.add_argument("--api-key", default=STANDIN_DEV_KEY)
    parser.add_argument("--standin-pid", type=int, help="the stand-in's pid, to show its CPU")
    parser.add_argument(
        "--no-restore-webhook", action="store_true", help="leave the webhook pointing at the peer"
    )
    parser.add_argument("--json-out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    stack = None
    try:
        if args.daily_url is None:
            stack = LocalStack(workdir=Path(tempfile.mkdtemp(prefix="peer-")))
            args.daily_url = stack.standin(api_key=args.api_key, rate_limit_scale=args.rate_scale)
            args.standin_pid = stack.procs[-1].pid
        result = asyncio.run(
            run(
                args.daily_url,
                args.campaigns,
                args.targets,
                args.rate_scale,
                api_key=args.api_key,
                standin_pid=args.standin_pid,
                restore_webhook=not args.no_restore_webhook,
            )
        )
    finally:
        if stack is not None:
            stack.close()
            with contextlib.suppress(OSError):
                for log in stack.logs:
                    log.unlink()
                stack.workdir.rmdir()
    print(table(result))
    print(json.dumps(result))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))
    ok = result["completed_dials"] == result["dials"] and result["rate_limited_429"] == 0
    return 0 if ok and (result["rooms_left"], result["legs_left_up"]) == (0, 0) else 1


if __name__ == "__main__":
    os.environ.pop("PREFECT_API_URL", None)  # nothing here talks to Prefect
    sys.exit(main())
