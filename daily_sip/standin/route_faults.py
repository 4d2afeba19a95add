"""Faults aimed at one route for a while: ``POST /_emulator/faults``.

The global ``--fault-*`` shares hit every request at random; soak tests and cleanup tests also
need "Daily answers 500 to ``DELETE /rooms/:name`` for the next 60 s" or "this ``POST /rooms``
takes effect but its answer is lost". A route fault is
``{"route": "DELETE /rooms/{name}", "mode": "error" | "lost" | "delay", "seconds": 60,
"count": null, "status": 500, "delay": 0}``:

* ``error``: answer ``status`` (5xx ``server-error``) before anything happens;
* ``lost``: do the request, then answer 504 ``server-error`` (the effect stays, the answer is lost);
* ``delay``: wait ``delay`` seconds before handling (a client that times out sees no answer, but
  the request still takes effect afterwards, as with a slow Daily).

It stays armed for ``seconds`` (from now) and/or ``count`` matching requests, whichever ends
first (``null`` = no limit on that axis). ``route`` is ``METHOD /path-template`` as listed by
``GET /_emulator/requests``; ``"*"`` matches every /v1 route.

Webhook deliveries have routes of their own, ``WEBHOOK <event type>`` (``WEBHOOK *`` for every
event), so a test can lose exactly the ``dialout.answered`` events or hold them back:

* ``drop``: the event is never sent (Daily gave up or the receiver was down);
* ``delay``: the event is sent ``delay`` seconds later (the others are not held up behind it);
* ``jitter`` on any ``delay`` fault: a random extra 0..``jitter`` seconds per request/event.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError
from .validation import check_int, check_number

MODES = ("error", "lost", "delay", "drop")
WEBHOOK = "WEBHOOK "


@dataclass
class RouteFault:
    route: str
    mode: str = "error"
    status: int = 500
    delay: float = 0.0
    jitter: float = 0.0
    until: float | None = None
    count: int | None = None
    hits: int = 0
    created: float = field(default_factory=time.monotonic)

    def active(self, now: float) -> bool:
        if self.until is not None and now >= self.until:
            return False
        return self.count is None or self.hits < self.count

    def to_json(self) -> dict[str, Any]:
        now = time.monotonic()
        return {
            "route": self.route,
            "mode": self.mode,
            "status": self.status,
            "delay": self.delay,
            "jitter": self.jitter,
            "seconds_left": None if self.until is None else max(0.0, self.until - now),
            "count": self.count,
            "hits": self.hits,
            "active": self.active(now),
        }


class RouteFaults:
    """The armed route faults of one stand-in process."""

    def __init__(self) -> None:
        self.faults: list[RouteFault] = []

    def add(self, body: Any) -> RouteFault:
        if not isinstance(body, dict) or not isinstance(body.get("route"), str):
            raise ApiError(400, "invalid-request-error", "route is required, e.g. 'DELETE /rooms/{name}'")
        mode = body.get("mode", "error")
        if mode not in MODES:
            raise ApiError(400, "invalid-request-error", f"mode must be one of {', '.join(MODES)}")
        webhook = body["route"].startswith(WEBHOOK)
        if (webhook and mode not in ("drop", "delay")) or (not webhook and mode == "drop"):
            raise ApiError(
                400,
                "invalid-request-error",
                "webhook routes take mode drop or delay; API routes error, lost or delay",
            )
        status = body.get("status", 500)
        if isinstance(status, bool) or not isinstance(status, int) or not 500 <= status <= 599:
            raise ApiError(400, "invalid-request-error", "status must be a 5xx")
        seconds, count = body.get("seconds"), body.get("count")
        if seconds is None and count is None:
            raise ApiError(400, "invalid-request-error", "give seconds and/or count")
        # A fault that could never expire (NaN, Infinity, negative) would outlive the test that armed it.
        for name in ("seconds", "delay", "jitter"):
            if body.get(name) is not None:
                check_number(name, body[name], 0)
        if count is not None:
            check_int("count", count, 0)
        fault = RouteFault(
            route=body["route"],
            mode=mode,
            status=status,
            delay=float(body.get("delay") or 0.0),
            jitter=float(body.get("jitter") or 0.0),
            until=None if seconds is None else time.monotonic() + float(seconds),
            count=count,
        )
        self.faults.append(fault)
        return fault

    def match(self, route_key: str) -> RouteFault | None:
        """The first active fault for this route, counted as hit."""
        now = time.monotonic()
        wildcard = f"{WEBHOOK}*" if route_key.startswith(WEBHOOK) else "*"
        for fault in self.faults:
            if fault.route in (route_key, wildcard) and fault.active(now):
                fault.hits += 1
                return fault
        return None

    def reset(self) -> None:
        self.faults.clear()


def delay_of(fault: RouteFault, rng: random.Random) -> float:
    """How long a ``delay`` fault holds this request or event."""
    return fault.delay + (rng.uniform(0, fault.jitter) if fault.jitter > 0 else 0.0)
