"""The one retry loop (`retry`) and the policies built on it, with the pauses recorded, not slept."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from daily_sip.tasks import ratelimit, retries
from daily_sip.tasks.errors import DailyNotFoundError, DailyRateLimitError, DailyServerError
from daily_sip.tasks.retries import doubling, inline, paced_call, persist, retry, until

_real_sleep = asyncio.sleep


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every pause the code under test asks for; none is slept."""
    asked: list[float] = []

    async def sleep(seconds: float, *args: Any) -> None:
        asked.append(seconds)
        await _real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return asked


def failing(*errors: Exception, result: Any = "ok") -> Callable[[], Any]:
    """A step raising ``errors`` in turn, then returning ``result``; ``.calls`` counts the tries."""
    queue = list(errors)

    async def step(*_args: Any, **_kwargs: Any) -> Any:
        step.calls += 1  # type: ignore[attr-defined]
        if queue:
            raise queue.pop(0)
        return result

    step.calls = 0  # type: ignore[attr-defined]
    return step


def server_error() -> DailyServerError:
    return DailyServerError(503, "server-error", None, method="GET", path="/rooms/r")


def not_found() -> DailyNotFoundError:
    return DailyNotFoundError(404, "not-found", None, method="GET", path="/rooms/r")


def rate_limited(retry_after: float | None = None) -> DailyRateLimitError:
    return DailyRateLimitError(429, "rate-limit", None, method="POST", path="/x", retry_after=retry_after)


async def test_retry_pauses_as_told_and_reports_each_retry(pauses):
    step = failing(ConnectionError("a"), ConnectionError("b"))
    seen: list[tuple[str, int, float]] = []
    result = await retry(
        step,
        when=lambda e: isinstance(e, ConnectionError),
        delay=doubling(0.5, 10.0),
        on_retry=lambda e, n, pause: seen.append((str(e), n, pause)),
    )
    assert result == "ok" and step.calls == 3
    assert pauses == [0.5, 1.0]
    assert seen == [("a", 0, 0.5), ("b", 1, 1.0)]


async def test_retry_raises_what_it_may_not_retry_and_when_told_to_give_up(pauses):
    step = failing(ValueError("permanent"))
    with pytest.raises(ValueError, match="permanent"):
        await retry(step, when=lambda e: isinstance(e, ConnectionError), delay=doubling(1, 1))
    assert step.calls == 1 and pauses == []

    step = failing(*(ConnectionError(str(i)) for i in range(5)))
    with pytest.raises(ConnectionError, match="2"):
        await retry(step, when=lambda e: True, delay=lambda n, e: None if n >= 2 else 1.0)
    assert step.calls == 3 and pauses == [1.0, 1.0]


def test_doubling_caps_and_never_overflows():
    pause = doubling(1.0, 20.0)
    assert [pause(n, Exception()) for n in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0]
    assert pause(100_000, Exception()) == 20.0


def test_until_gives_up_when_the_pause_would_pass_the_deadline(monkeypatch):
    monkeypatch.setattr(retries, "time", SimpleNamespace(monotonic=lambda: 100.0))
    pause = until(103.0, doubling(1.0, 20.0))
    assert [pause(n, Exception()) for n in range(3)] == [1.0, 2.0, None]


async def test_persist_retries_transient_errors_until_the_deadline(pauses, monkeypatch):
    step = failing(server_error(), server_error())
    assert await persist(step, deadline=float("inf"), what="delete room r") == "ok"
    assert pauses == [1.0, 2.0]

    monkeypatch.setattr(retries, "time", SimpleNamespace(monotonic=lambda: 0.0))
    step = failing(*(server_error() for _ in range(10)))
    with pytest.raises(DailyServerError):
        await persist(step, deadline=10.0, what="delete room r")
    assert pauses[2:] == [1.0, 2.0, 4.0, 8.0]  # (the clock stands still) 16 s would end after it

    step = failing(not_found())
    with pytest.raises(DailyNotFoundError):
        await persist(step, deadline=float("inf"), what="delete room r")
    assert step.calls == 1


async def test_inline_uses_the_tasks_own_retries_delays_and_jitter(pauses):
    task = SimpleNamespace(
        name="daily-get-room", retries=2, retry_delay_seconds=[0.5, 1.0], retry_jitter_factor=0, fn=None
    )
    task.fn = failing(server_error(), server_error(), result="room")
    assert await inline(task, "r") == "room"
    assert pauses == [0.5, 1.0]

    task.fn = failing(server_error(), server_error(), server_error())
    with pytest.raises(DailyServerError):
        await inline(task, "r")
    assert task.fn.calls == 3

    task.fn = failing(not_found())
    with pytest.raises(DailyNotFoundError):
        await inline(task, "r")
    assert task.fn.calls == 1


async def test_paced_call_waits_out_a_429_on_a_new_permit(pauses, monkeypatch):
    asked: list[bool] = []
    done: list[bool] = []

    async def pace(rate: Any, *, after_429: bool = False) -> Any:
        asked.append(after_429)

        async def permit_done() -> None:
            done.append(True)

        return SimpleNamespace(done=permit_done)

    monkeypatch.setattr(retries, "pace", pace)
    call = failing(rate_limited(retry_after=3.0), rate_limited(), result="started")
    assert await paced_call(ratelimit.DIALOUT_START, call) == "started"
    assert asked == [False, True, True]  # the pacer hears of the 429 with the next ask
    assert len(done) == 3  # every permit is reported, the refused ones too
    assert pauses == [3.0, 0.0]  # Retry-After when Daily sends one; the window is pace's job

    call = failing(*(rate_limited() for _ in range(retries.MAX_429_RETRIES + 1)))
    with pytest.raises(DailyRateLimitError):
        await paced_call(ratelimit.DIALOUT_START, call)
    assert call.calls == retries.MAX_429_RETRIES + 1


async def test_an_unreachable_pacer_is_asked_again_then_given_up_on(pauses, monkeypatch):
    clock = [0.0]

    class Refusing:
        async def post(self, *args: Any, **kwargs: Any) -> Any:
            clock[0] += 30.0
            raise ConnectionRefusedError("refused")

    monkeypatch.setattr(ratelimit, "_http", Refusing)
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    with pytest.raises(ratelimit.PacerUnavailableError, match="unreachable for 300 s"):
        await ratelimit._shared_permit(["http://pacer"], ratelimit.DIALOUT_START, 1.0, False)
    assert pauses == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 10.0]


def test_docstring_examples_hold():
    import doctest

    assert doctest.testmod(retries).failed == 0
