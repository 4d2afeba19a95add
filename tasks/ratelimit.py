"""Pacing Daily calls below Daily's published rate limits, across every process of an account.

Daily's limits are per account (domain) and counted in windows ("5 per 5 s" for starting
SIP/PSTN calls, "20 per 1 s and 100 per 5 s" for most calls, "2 per 1 s and 50 per 30 s" for
room deletes; https://docs.daily.co/reference/rest-api, "Rate limits"). Every campaign of an
account, in any process on any worker, draws from the same windows.

**How: one shared pacer per account, handing out permits that last until the answer.** When
``DAILY_PACER_URL`` is set, every call first asks the pacer (``python -m daily_sip.pacer``, one
long-lived process per account) for a permit of its class, sends right after it is granted, and
reports the answer. Daily counts a request somewhere between its sending and its answer, so the
pacer's permit book (`daily_sip.tasks.window.PermitBook`) counts a permit as possibly inside
Daily's window from its grant until that report: whatever the event loops, the network or Daily
itself delay, the fleet keeps Daily's sliding window exactly, and the calls of a busy fleet
follow each other as closely as their answers allow. Waiters are served oldest first; a waiting
ask is held open by the pacer rather than polled. Each local window is `RateClass.margin`
longer than Daily's, for clock-rate differences only (1 % for call starts).

Measured (``benchmarks/fleet.py``, 100 campaigns of 5 on two workers): permits that were points
in time, 5 % apart, drew 24-35 429s, because a busy 2-core machine sent or counted some calls
more than 0.25 s after their permit. Permits that last until the answer drew none.

Why this and not the alternatives (measured, see ``benchmarks/fleet.py`` and the README):

* Prefect global concurrency limits in ``rate_limit`` mode (what this module did before): the
  server's slot decay is a token bucket (5 at once, then 1/s: up to 9 starts in a 5 s window,
  so Daily answers 429), it rounds down and restarts on every change (one campaign started a
  call every ~1.2 s instead of 1 s), and every waiting process polls it (191 refused + 135 busy
  slot requests per 100 starts), so server load grows with the campaigns waiting their turn.
* A global limit used as a mutex around a window record in a Prefect Variable would keep the
  exact window, but costs four API round trips per permit plus polling for the mutex, all on
  the Prefect server the flows already load.
* One process for all campaigns would pace exactly in memory, but gives up Prefect's one flow
  run per campaign, its workers and its cancellation.

A permit is two small HTTP requests to a process that does no I/O; a waiting call holds one idle
connection, not a poller, whether ten or a thousand are waiting. If the pacer cannot be reached, the call
waits and retries, logging a warning each time, and fails after ``PACER_GIVE_UP_SECONDS``
without sending anything: it never quietly paces per process instead. A 429 that Daily answers
all the same is absorbed by `daily_sip.tasks.retries.paced_call`: the pacer is told (it grants
nothing more of that class for one window) and the call is retried on a new permit.

Without ``DAILY_PACER_URL`` (one campaign at a time: ``daily-sip run``, the demo, notebooks) an
in-process window limiter paces, and the first paced call says so once, as a warning naming the
variable. ``DAILY_RATE_LIMIT_SCALE`` scales every count (2 = twice the allowance, for accounts
whose limits Daily raised; 0 = no pacing, for a stand-in started with rate limits off).

Example:
    ```python
    from daily_sip.tasks.ratelimit import DIALOUT_START, pace

    permit = await pace(DIALOUT_START)  # returns when one more call start fits Daily's window
    try:
        await client.start_dial_out(room, request)
    finally:
        await permit.done()  # Daily counted it by now: the window runs from here
    ```
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import logging
import os
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import DailyError
from .window import PermitBook

logger = logging.getLogger("daily_sip.ratelimit")


@dataclass(frozen=True)
class RateClass:
    """One of Daily's rate-limit classes: every ``(count, seconds)`` window must hold."""

    key: str
    windows: tuple[tuple[int, float], ...]
    allowance: str  # Daily's own words, for docs and the CLI
    margin: float = 0.01  # each local window is this much longer than Daily's


# Daily: "~1 req/s, or 5 per 5 s window (bursts allowed within the window)" for starting SIP calls.
DIALOUT_START = RateClass("dialout-start", ((5, 5.0),), "5 per 5 s (~1/s)")
# Daily: "~2 req/s, or 50 per 30 s" for DELETE /rooms/:name; both are kept.
ROOM_DELETE = RateClass("room-delete", ((2, 1.0), (50, 30.0)), "50 per 30 s (~2/s)")
# Daily: "20 req/s, or 100 per 5 s" for everything else; both are kept.
DEFAULT = RateClass("default", ((20, 1.0), (100, 5.0)), "100 per 5 s (20/s)")
RATE_CLASSES = (DIALOUT_START, ROOM_DELETE, DEFAULT)

# Why each local window is still a little longer than Daily's (`RateClass.margin`): the pacer and
# Daily measure the window on different clocks, which may run at slightly different rates.
# Sends that are late or slowly answered need no margin: a permit stays open until its answer.


def rate_scale() -> float:
    raw = os.environ.get("DAILY_RATE_LIMIT_SCALE", "1")
    try:
        scale = float(raw)
    except ValueError:
        msg = f"DAILY_RATE_LIMIT_SCALE={raw!r} is not a number (1 = Daily's limits, 0 = off)"
        raise ValueError(msg) from None
    if scale < 0:
        raise ValueError("DAILY_RATE_LIMIT_SCALE must be >= 0 (1 = Daily's limits, 0 = off)")
    return scale


def scaled(rate: RateClass, scale: float) -> tuple[tuple[int, float], ...]:
    """The local windows: counts scaled, each window a little longer than Daily's."""
    return tuple((max(1, round(n * scale)), w * (1 + rate.margin)) for n, w in rate.windows)


class WindowLimiter:
    """In-process pacing: a `PermitBook` for one event loop; waiters served in order.

    A permit is open from when it is granted until `Permit.done` (Daily counted the call in
    between), so a call that left late or was answered slowly never lets the next window open
    early.
    """

    def __init__(self, windows: tuple[tuple[int, float], ...]) -> None:
        self.book = PermitBook(windows)
        self._lock = asyncio.Lock()
        self._closed = asyncio.Event()

    async def acquire(self) -> str:
        """Wait for room in every window; returns the permit's id (see `close`)."""
        async with self._lock:
            while (wait := self.book.wait(time.monotonic())) > 0:
                self._closed.clear()
                try:
                    await asyncio.wait_for(self._closed.wait(), wait)
                except TimeoutError:
                    pass
            return self.book.grant(time.monotonic())

    def close(self, pid: str) -> None:
        self.book.done(pid, time.monotonic())
        self._closed.set()


@dataclass
class Permit:
    """What `pace` hands out; ``await permit.done()`` once Daily answered (or the call gave up)."""

    limiter: WindowLimiter | None = None
    pid: str | None = None
    pacer: str | None = None
    others: list[str] = field(default_factory=list)  # pacers sharing its book, if it dies

    async def done(self) -> None:
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        if self.limiter is not None:
            self.limiter.close(pid)
        elif self.pacer is not None:
            # A pacer restarting (it keeps its book, see `daily_sip.pacer.statefile`) is back
            # within a second or two; a report lost for good leaves the permit to its lease.
            deadline = time.monotonic() + DONE_TIMEOUT
            pacers = [self.pacer, *self.others]
            for attempt in itertools.count():
                try:
                    url = pacers[attempt % len(pacers)]
                    response = await _http().post(f"{url}/v1/permits/{pid}/done", timeout=DONE_TIMEOUT)
                    response.raise_for_status()
                    return
                except Exception as exc:
                    if time.monotonic() >= deadline:
                        logger.debug("pacer did not take the report of permit %s: %s", pid, exc)
                        return
                    await asyncio.sleep(0.2)


# Limiters and HTTP clients belong to one event loop (asyncio.Lock, pooled connections).
_local: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, WindowLimiter]] = (
    weakref.WeakKeyDictionary()
)
_pacer_http: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
_warned_local = False
# Per list of pacer URLs: the index of the one this process asks first (the last to answer).
_preferred: dict[tuple[str, ...], int] = {}

PACER_URL_ENV = "DAILY_PACER_URL"
PACER_TOKEN_ENV = "DAILY_PACER_TOKEN"
# How long a call waits for an unreachable pacer before it fails (nothing sent to Daily).
PACER_GIVE_UP_SECONDS = 300.0
# How long the pacer may hold an ask before answering "ask again" (it holds the shorter of this
# and its own --hold-seconds), and how long the ask waits for that answer.
ASK_HOLD = 25.0
ASK_TIMEOUT = ASK_HOLD + 15.0
DONE_TIMEOUT = 5.0


class PacerUnavailableError(DailyError):
    """The shared pacer did not answer for ``PACER_GIVE_UP_SECONDS``; the call was not sent.

    Not transient: the call already waited that long, a task retry would only wait again.
    """


def pacer_headers() -> dict[str, str]:
    """The pacer's bearer token (``DAILY_PACER_TOKEN``) as request headers, if one is set."""
    token = os.environ.get(PACER_TOKEN_ENV)
    return {"Authorization": f"Bearer {token}"} if token else {}


def pacer_url() -> str | None:
    """The shared pacer's base URL (``DAILY_PACER_URL``), or None for in-process pacing.

    Several URLs, comma-separated, name pacers that share one book (``--redis-url``): an ask
    that cannot reach one goes to the next.
    """
    return ",".join(pacer_urls()) or None


def pacer_urls() -> list[str]:
    """Every pacer named by ``DAILY_PACER_URL`` (comma-separated), in order."""
    raw = os.environ.get(PACER_URL_ENV) or ""
    return [url.strip().rstrip("/") for url in raw.split(",") if url.strip()]


def run_warning(message: str, *args: object) -> None:
    """To the run's log when there is a run (the UI shows it), else to this module's logger."""
    try:
        from prefect.logging import get_run_logger

        get_run_logger().warning(message, *args)
    except Exception:  # no run context
        logger.warning(message, *args)


def _http() -> Any:
    import httpx

    loop = asyncio.get_running_loop()
    client = _pacer_http.get(loop)
    if client is None or client.is_closed:
        # Every call waiting for a permit holds one connection to the pacer: no pool cap.
        client = _pacer_http[loop] = httpx.AsyncClient(
            timeout=httpx.Timeout(ASK_TIMEOUT, connect=3.0, pool=None),
            headers=pacer_headers(),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=50),
        )
    return client


async def _answer(urls: list[str], body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A pacer's answer to one ask and which pacer gave it; while none can be reached the ask is
    retried (at once on the next pacer, then 0.5 s doubling to 10 s, a warning each time) and
    fails after ``PACER_GIVE_UP_SECONDS``."""
    # Here, not at the top: `retries` imports this module (`paced_call` paces its calls).
    from .retries import doubling, retry

    started = time.monotonic()
    backoff = doubling(0.5, 10.0)
    key = tuple(urls)
    first = _preferred.get(key, 0)  # the pacer that last answered this process
    turn = [0]

    def url_now() -> str:
        return urls[(first + turn[0]) % len(urls)]

    async def ask() -> dict[str, Any]:
        response = await _http().post(f"{url_now()}/v1/permits", json=body)
        response.raise_for_status()
        answer = response.json()
        if not answer.get("id") and not answer.get("wait"):
            raise ValueError(f"unexpected answer {answer!r} (a pacer of another version?)")
        return answer

    def pause(n: int, error: Exception) -> float | None:
        if time.monotonic() - started >= PACER_GIVE_UP_SECONDS:
            return None
        turn[0] += 1
        return 0.0 if turn[0] % len(urls) else backoff(n, error)  # the next pacer at once

    def unreachable(error: Exception, _n: int, pause: float) -> None:
        failed = (first + turn[0] - 1) % len(urls)
        if _preferred.get(key, 0) != failed:
            # Another ask of this process already found it down and moved on: one warning
            # per outage and process, not one per waiting call.
            logger.debug("shared pacer %s unreachable (%s)", urls[failed], type(error).__name__)
            return
        _preferred[key] = (failed + 1) % len(urls)
        run_warning(
            "shared pacer %s unreachable (%s: %s); %s: no Daily call is sent without a permit",
            urls[failed],
            type(error).__name__,
            error,
            f"asking {url_now()} instead" if pause == 0.0 else f"waiting {pause:.1f} s for it",
        )

    try:  # refused, timed out, 5xx, garbage: all mean "no permit yet"
        answer = await retry(ask, when=lambda _error: True, delay=pause, on_retry=unreachable)
        _preferred[key] = (first + turn[0]) % len(urls)
        return answer, url_now()
    except Exception as exc:
        waited = time.monotonic() - started
        raise PacerUnavailableError(
            f"shared pacer {','.join(urls)} unreachable for {waited:.0f} s ({type(exc).__name__}: "
            f"{exc}); the Daily call was not sent"
        ) from None


_place: contextvars.ContextVar[float | None] = contextvars.ContextVar("daily_pacer_place", default=None)


@contextlib.contextmanager
def place_in_line(since: float | None = None) -> Iterator[float]:
    """Every ask to the shared pacer made inside takes one place in its line: ``since``
    (wall-clock seconds; default now), so the pacer serves the oldest holder first.

    A campaign takes its place once, when it starts: when many campaigns start together, the
    pacer then serves them one after another instead of one call of each in turn, so each
    campaign's bridges join its room together and each campaign ends as soon as it can (a
    campaign alive for the whole top of the hour costs Prefect writes for all of it).

    Example:
        ```python
        with place_in_line():
            permit = await pace(DIALOUT_START)  # ahead of every ask of a later place
        ```
    """
    token = _place.set(time.time() if since is None else since)
    try:
        yield _place.get() or 0.0
    finally:
        _place.reset(token)


async def _shared_permit(urls: list[str], rate: RateClass, scale: float, after_429: bool) -> Permit:
    """Ask the pacer until it grants a permit; wait out an absent pacer (never bypass it)."""
    body: dict[str, Any] = {
        "rate": rate.key,
        "windows": [list(w) for w in scaled(rate, scale)],
        "after_429": after_429,
        "hold": ASK_HOLD,
    }
    if (place := _place.get()) is not None:
        body["since"] = place
    # Not a retry: an ask the pacer held for its whole time is answered "ask again", and asked
    # again at once, keeping its place in the line (`_answer` retries an unreachable pacer).
    while True:
        answer, url = await _answer(urls, body)
        if answer.get("id"):
            return Permit(pid=str(answer["id"]), pacer=url, others=[u for u in urls if u != url])
        body.update(since=answer.get("since"), after_429=False)  # held long enough: keep our place


async def pace(rate: RateClass, *, after_429: bool = False) -> Permit:
    """Wait until one more call of this class fits Daily's limit; send the request right after.

    ``after_429``: the previous try of this call was answered 429; the window is then given a
    full period to clear before the retry.

    Example:
        ```python
        permit = await pace(DIALOUT_START)
        try:
            await client.start_dial_out(room, request)
        finally:
            await permit.done()
        ```
    """
    global _warned_local
    scale = rate_scale()
    if scale == 0:
        return Permit()
    urls = pacer_urls()
    if urls:
        return await _shared_permit(urls, rate, scale, after_429)
    if not _warned_local:
        _warned_local = True
        run_warning(
            "%s is not set: Daily's rate limits are kept within this process only; "
            "campaigns running at the same time in other processes can exceed them (start "
            "`python -m daily_sip.pacer` and set %s)",
            PACER_URL_ENV,
            PACER_URL_ENV,
        )
    limiters = _local.setdefault(asyncio.get_running_loop(), {})
    limiter = limiters.get(rate.key)
    if limiter is None or limiter.book.windows != scaled(rate, scale):
        limiter = limiters[rate.key] = WindowLimiter(scaled(rate, scale))
    if after_429:
        limiter.book.penalize(time.monotonic())
    return Permit(limiter, await limiter.acquire())
