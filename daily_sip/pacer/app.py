"""HTTP API of the pacer.

``POST /v1/permits`` with ``{"rate": "dialout-start", "windows": [[5, 5.05]], "account": "...",
"after_429": false}`` asks for one permit. The answer comes when one fits:
``{"id": "...", "delay": 0}``; the caller sends its Daily request right away, then reports its
answer with ``POST /v1/permits/<id>/done`` (see `daily_sip.tasks.window` for why a permit lasts
until then). Waiters are served oldest first. An ask is held at most ``HOLD_SECONDS`` (or the
``"hold"`` seconds it names, if shorter: its caller's read timeout); then the answer is
``{"wait": true, "since": t}`` and the caller asks again with ``"since": t``, which keeps its
place in the line. ``after_429: true`` says Daily refused a call of that class anyway:
nothing more is granted for one window. ``GET /healthz`` answers ``{"ok": true, "books": {...}}``
with counts per class.

A held ask costs an idle connection and a future: a thousand waiting calls are a thousand
sleeping sockets, not a thousand pollers. A caller that hangs up while it waits leaves the line.

With ``token`` set, every ``/v1`` request needs ``Authorization: Bearer <token>``.

With a `StateFile`, every grant, answer and 429 is written to it and a new process starts from
it: a restart grants no more than Daily's window still allows (see `daily_sip.pacer.statefile`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import hmac
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from daily_sip import strict_json
from daily_sip.tasks.window import PermitBook

from .shared import RedisBook, RedisBooks
from .statefile import StateFile, StateFileError

logger = logging.getLogger("daily_sip.pacer")

# Below the usual 60 s idle cut of proxies between workers and the pacer.
HOLD_SECONDS = 25.0


def _windows(raw: Any) -> tuple[tuple[int, float], ...]:
    if not isinstance(raw, list) or not raw:
        raise ValueError("windows must be a non-empty list of [count, seconds]")
    out = []
    for item in raw:
        count, seconds = item
        if int(count) < 1 or float(seconds) <= 0:
            raise ValueError("each window needs count >= 1 and seconds > 0")
        out.append((int(count), float(seconds)))
    return tuple(out)


class Waiters:
    """Callers waiting for a permit, oldest ``since`` first; a caller that hung up is skipped."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, asyncio.Future[str]]] = []
        self._seq = itertools.count()

    def add(self, since: float) -> asyncio.Future[str]:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (since, next(self._seq), future))
        return future

    def first(self) -> asyncio.Future[str] | None:
        """The oldest caller still waiting, or None."""
        while self._heap and self._heap[0][2].done():
            heapq.heappop(self._heap)
        return self._heap[0][2] if self._heap else None

    def pop(self) -> asyncio.Future[str]:
        return heapq.heappop(self._heap)[2]

    def __len__(self) -> int:
        return sum(1 for *_, future in self._heap if not future.done())


class Line:
    """One book and the callers waiting on it, oldest ``since`` first."""

    def __init__(self, book: PermitBook, index: int, changed: Any = None) -> None:
        self.book = book
        self.index = index  # a permit id is "<index>-<id in the book>"
        self.changed = changed  # called after every grant (the state file's writer)
        self._waiters = Waiters()
        self._timer: asyncio.TimerHandle | None = None

    def join(self, since: float) -> asyncio.Future[str]:
        future = self._waiters.add(since)
        self.pump()
        return future

    def pump(self) -> None:
        """Grant to the oldest waiters while permits fit; otherwise wake up when one will."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._waiters.first() is not None:
            now = time.monotonic()
            wait = self.book.wait(now)
            if wait > 0:
                self._timer = asyncio.get_running_loop().call_later(wait, self.pump)
                return
            self._waiters.pop().set_result(self.book.grant(now))
            if self.changed is not None:
                self.changed()

    @property
    def waiting(self) -> int:
        return len(self._waiters)


async def _disconnected(request: Request) -> None:
    """Returns when the caller hangs up (the body has been read, so only that can arrive)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _authorizer(token: str | None) -> Callable[[Request], bool]:
    def authorized(request: Request) -> bool:
        if not token:
            return True
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())

    return authorized


async def _hold(request: Request, granted: asyncio.Future[str], hold: float) -> tuple[str | None, bool]:
    """Wait up to ``hold`` s for the grant; ``(id or None, whether the caller hung up)``."""
    hangup = asyncio.ensure_future(_disconnected(request))
    try:
        either: set[asyncio.Future[Any]] = {granted, hangup}
        await asyncio.wait(either, timeout=hold, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hung_up = hangup.done() and not hangup.cancelled()
        hangup.cancel()
    if not granted.done():
        granted.cancel()  # leaves the line; the pump skips it
        return None, hung_up
    return granted.result(), hung_up


def _ask(
    body: Any, hold_seconds: float, clock: Callable[[], float] = time.time
) -> tuple[str, tuple[tuple[int, float], ...], str, float, float]:
    """``(rate, windows, account, since, hold)`` of a permit request; ValueError and co. if bad."""
    return (
        str(body["rate"]),
        _windows(body["windows"]),
        str(body.get("account") or "default"),
        float(body.get("since") or clock()),
        min(hold_seconds, float(body.get("hold") or hold_seconds)),
    )


def create_app(
    token: str | None = None, hold_seconds: float = HOLD_SECONDS, state: StateFile | None = None
) -> Starlette:
    """The pacer's Starlette app; books live as long as the app (one process = one truth), and
    with ``state`` also in its file, read back by the next process (see `statefile`)."""
    lines: dict[tuple[str, str], Line] = {}
    by_index: list[Line] = []

    def _save() -> None:
        if state is not None:
            now = time.monotonic()
            state.save([(a, r, line.index, line.book) for (a, r), line in lines.items()], now)

    if state is not None:
        for account, rate, index, book in sorted(state.load(time.monotonic()), key=lambda x: x[2]):
            if index != len(by_index):  # ids name lines by position: keep every position
                raise StateFileError(f"state file {state.path} is not a pacer's book (line ids)")
            lines[(account, rate)] = Line(book, index, _save)
            by_index.append(lines[(account, rate)])

    _authorized = _authorizer(token)

    def _line(account: str, rate: str, windows: tuple[tuple[int, float], ...]) -> Line:
        line = lines.get((account, rate))
        if line is None:
            line = lines[(account, rate)] = Line(PermitBook(windows), len(by_index), _save)
            by_index.append(line)
        elif line.book.windows != windows:
            logger.warning(
                "%s/%s: windows changed from %s to %s (clients disagree on the rate scale?)",
                account,
                rate,
                line.book.windows,
                windows,
            )
            line.book.windows = windows
        return line

    def _close(pid: str) -> None:
        index, _, own = pid.partition("-")
        if index.isdigit() and int(index) < len(by_index):
            line = by_index[int(index)]
            line.book.done(own, time.monotonic())  # unknown ids (lease ran out): no-op
            _save()
            line.pump()

    async def permits(request: Request) -> JSONResponse:
        if not _authorized(request):
            return JSONResponse({"error": "authentication-error"}, status_code=401)
        try:
            body = strict_json.loads(await request.body())  # no NaN, depth or size bombs
            rate, windows, account, since, hold = _ask(body, hold_seconds)
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": "invalid-request-error", "info": str(exc)}, status_code=400)
        line = _line(account, rate, windows)
        if body.get("after_429"):
            logger.warning(
                "%s/%s: a client got 429 from Daily; granting nothing for one window", account, rate
            )
            line.book.penalize(time.monotonic())
            _save()
        granted = line.join(since)
        got, hung_up = await _hold(request, granted, hold)
        if got is None:
            return JSONResponse({"wait": True, "since": since})
        pid = f"{line.index}-{got}"
        if hung_up:  # nobody will send on it
            _close(pid)
        return JSONResponse({"id": pid, "delay": 0})

    async def done(request: Request) -> JSONResponse:
        if not _authorized(request):
            return JSONResponse({"error": "authentication-error"}, status_code=401)
        _close(request.path_params["pid"])
        return JSONResponse({"ok": True})

    async def healthz(request: Request) -> JSONResponse:
        now = time.monotonic()
        return JSONResponse(
            {
                "ok": True,
                "books": {
                    f"{account}/{rate}": {
                        "granted": line.book.granted,
                        "after_429": line.book.penalties,
                        "open": line.book.open_at(now),
                        "waiting": line.waiting,
                    }
                    for (account, rate), line in lines.items()
                },
            }
        )

    return Starlette(
        routes=[
            Route("/v1/permits", permits, methods=["POST"]),
            Route("/v1/permits/{pid}/done", done, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


class SharedLine:
    """The callers of this process waiting on one `RedisBook`, oldest ``since`` first.

    Other pacers serve the same book: a grant is whatever Redis's script says fits, and a permit
    closed by any pacer wakes this one (pub/sub); without that message (Redis restarting) the line
    still wakes when the script said one may fit.
    """

    def __init__(self, book: RedisBook) -> None:
        self.book = book
        self._waiters = Waiters()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def join(self, since: float) -> asyncio.Future[str]:
        future = self._waiters.add(since)
        self.wake()
        return future

    def wake(self) -> None:
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        while self._waiters.first() is not None:
            self._wake.clear()
            try:
                pid, wait = await self.book.try_grant()
            except Exception as exc:  # Redis unreachable: nothing is granted without the book
                logger.warning("pacer: Redis unreachable (%s: %s); granting nothing", type(exc).__name__, exc)
                pid, wait = None, 0.5
            if pid is not None:
                first = self._waiters.first()
                if first is None:  # the caller left while Redis answered
                    await self.book.store.done(pid)
                    return
                self._waiters.pop()
                first.set_result(pid)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    @property
    def waiting(self) -> int:
        return len(self._waiters)


def create_shared_app(
    books: RedisBooks, token: str | None = None, hold_seconds: float = HOLD_SECONDS
) -> Starlette:
    """The pacer's app with its book in Redis: any number of these serve the same windows.

    Permit ids name their book, so a permit is reported to any of them. ``since`` is wall-clock
    time here, so a caller that asks again at another pacer keeps roughly its place.
    """
    lines: dict[tuple[str, str], SharedLine] = {}
    _authorized = _authorizer(token)
    listener: list[asyncio.Task[None]] = []

    def _woken(book: str) -> None:
        for line in lines.values():
            if line.book.id == book:
                line.wake()

    def _line(account: str, rate: str, windows: tuple[tuple[int, float], ...]) -> SharedLine:
        if not listener:
            listener.append(asyncio.ensure_future(books.listen(_woken)))
        line = lines.get((account, rate))
        if line is None:
            line = lines[(account, rate)] = SharedLine(books.book(account, rate, windows))
        line.book.windows = windows
        return line

    async def permits(request: Request) -> JSONResponse:
        if not _authorized(request):
            return JSONResponse({"error": "authentication-error"}, status_code=401)
        try:
            body = strict_json.loads(await request.body())  # no NaN, depth or size bombs
            rate, windows, account, since, hold = _ask(body, hold_seconds, time.time)
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": "invalid-request-error", "info": str(exc)}, status_code=400)
        line = _line(account, rate, windows)
        if body.get("after_429"):
            logger.warning(
                "%s/%s: a client got 429 from Daily; granting nothing for one window", account, rate
            )
            try:
                await line.book.penalize()
            except Exception as exc:
                return JSONResponse({"error": "unavailable", "info": type(exc).__name__}, status_code=503)
        granted = line.join(since)
        pid, hung_up = await _hold(request, granted, hold)
        if pid is None:
            return JSONResponse({"wait": True, "since": since})
        if hung_up:  # nobody will send on it
            with contextlib.suppress(Exception):
                await books.done(pid)
        return JSONResponse({"id": pid, "delay": 0})

    async def done(request: Request) -> JSONResponse:
        if not _authorized(request):
            return JSONResponse({"error": "authentication-error"}, status_code=401)
        try:
            await books.done(request.path_params["pid"])
        except Exception as exc:  # the client retries, then leaves it to the lease
            return JSONResponse({"error": "unavailable", "info": type(exc).__name__}, status_code=503)
        return JSONResponse({"ok": True})

    async def healthz(request: Request) -> JSONResponse:
        try:
            await books.ping()
            stats = {
                f"{a}/{r}": {**await line.book.stats(), "waiting": line.waiting}
                for (a, r), line in lines.items()
            }
        except Exception as exc:  # a balancer takes this pacer out while it has no book
            return JSONResponse({"ok": False, "error": f"redis: {type(exc).__name__}"}, status_code=503)
        return JSONResponse({"ok": True, "books": stats})

    return Starlette(
        routes=[
            Route("/v1/permits", permits, methods=["POST"]),
            Route("/v1/permits/{pid}/done", done, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
