"""The shared pacer: several processes of one account keep Daily's window together.

Real processes throughout: the stand-in at Daily's limits, ``python -m daily_sip.pacer``, and
campaign-like client processes that only know ``DAILY_PACER_URL``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from prefect import flow

from daily_sip.local_stack import free_port
from daily_sip.tasks import ratelimit
from daily_sip.tasks.client import DailyClient
from daily_sip.tasks.credentials import DailyCredentials
from daily_sip.tasks.dialout import astart_dial_out
from daily_sip.tasks.ratelimit import DIALOUT_START, PacerUnavailableError
from daily_sip.tasks.window import PermitBook
from tests.conftest import stop_process

DIAL_PROPS = {"enable_dialout": True, "dialout_config": {"allow_room_start": True}}

# One campaign process: four dial-outs at once, paced only through DAILY_PACER_URL.
CAMPAIGN_PROCESS = """
import asyncio, sys
from daily_sip.tasks.client import DailyClient
from daily_sip.tasks.ratelimit import DIALOUT_START
from daily_sip.tasks.retries import paced_call

async def main(url, key, room, prefix):
    async with DailyClient(key, url) as daily:
        await asyncio.gather(*(
            paced_call(DIALOUT_START, lambda i=i: daily.start_dial_out(
                room, {"sipUri": f"sip:{prefix}-{i}@pbx.example.com"}))
            for i in range(4)))

asyncio.run(main(*sys.argv[1:]))
"""


def _start_pacer(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "daily_sip.pacer", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise RuntimeError(f"pacer did not start: {url!r} {proc.stderr.read()[-2000:]}")
    return proc, url


@pytest.fixture
def pacer() -> Iterator[str]:
    proc, url = _start_pacer()
    yield url
    stop_process(proc)


def _room(emu) -> str:
    r = httpx.post(f"{emu.base_url}/rooms", json={"properties": DIAL_PROPS}, headers=emu.headers())
    r.raise_for_status()
    return r.json()["name"]


def test_permit_book_counts_a_permit_until_its_answer():
    book = PermitBook(((2, 1.0),), lease=30.0)
    a, b = book.grant(now=0.0), book.grant(now=0.0)
    assert book.wait(now=0.0) == 31.0  # both calls may still be counted: only their leases bound it
    book.done(a, now=0.1)
    assert book.wait(now=0.2) == pytest.approx(0.9)  # b open, a out of the window at 1.1
    book.done(b, now=0.4)
    assert book.wait(now=0.5) == pytest.approx(0.6)
    slow = PermitBook(((1, 5.0),), lease=30.0)
    slow.done(slow.grant(now=0.0), now=2.0)  # answered 2 s later: Daily may have counted it at 2.0
    assert slow.wait(now=2.0) == 5.0  # the window runs from the answer, not from the permit
    slow.penalize(now=7.0)  # a 429 all the same: nothing for one longest window
    assert slow.wait(now=7.0) == 5.0
    lost = PermitBook(((1, 1.0),), lease=30.0)
    lost.grant(now=0.0)  # its caller died before reporting
    assert lost.wait(now=31.0) == 0.0


def _three_campaign_processes(emu, pacer: str, room: str) -> None:
    env = {**os.environ, "DAILY_PACER_URL": pacer, "DAILY_RATE_LIMIT_SCALE": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CAMPAIGN_PROCESS, emu.base_url, emu.api_key, room, f"p{n}"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err[-2000:]


def test_three_campaign_processes_share_dailys_window(start_emulator, pacer):
    emu = start_emulator(rate_limit_scale=1, session_limit=20, connect_delay=0.05, answer_delay=0.05)
    room = _room(emu)
    _three_campaign_processes(emu, pacer, room)
    requests = emu.introspect("requests")
    # Each process alone would start its four at once: 12 in the first second, 7 refused.
    assert requests["rate_limited"] == 0, requests
    assert requests["by_route"]["POST /rooms/{name}/dialOut/start"] == {"200": 12}
    started = sorted(datetime.fromisoformat(leg["created_at"]) for leg in emu.introspect("legs", room=room))
    assert all((started[i + 5] - started[i]).total_seconds() >= 4.9 for i in range(len(started) - 5))
    health = httpx.get(f"{pacer}/healthz").json()
    assert health["books"]["default/dialout-start"]["granted"] == 12
    assert health["books"]["default/dialout-start"]["open"] == 0  # every call reported its answer


def test_daily_counting_a_call_late_is_no_429(start_emulator, pacer):
    """Daily counts a call somewhere between its sending and its answer, not at a fixed point.

    Here the stand-in holds each call start 0-1.5 s before counting it (a loaded Daily, or a
    queue in front of it). Permits that were points in time 5 % apart got 429s from this (the
    fifth permit of a window counted late, the sixth on time); a permit that lasts until the
    call's answer cannot.
    """
    emu = start_emulator(rate_limit_scale=1, session_limit=20, connect_delay=0.05, answer_delay=0.05)
    room = _room(emu)
    httpx.post(
        f"{emu.root}/_emulator/faults",
        json={
            "route": "POST /rooms/{name}/dialOut/start",
            "mode": "delay",
            "delay": 0,
            "jitter": 1.5,
            "seconds": 600,
        },
    ).raise_for_status()
    _three_campaign_processes(emu, pacer, room)
    requests = emu.introspect("requests")
    assert requests["rate_limited"] == 0, requests
    assert requests["by_route"]["POST /rooms/{name}/dialOut/start"] == {"200": 12}


def test_a_waiting_ask_keeps_its_place_and_the_window_runs_from_the_answer():
    proc, url = _start_pacer("--hold-seconds", "0.5")
    ask = {"rate": "t", "windows": [[1, 2.0]]}
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            first = http.post("/v1/permits", json=ask).json()["id"]
            held = http.post("/v1/permits", json=ask).json()  # held 0.5 s, then "ask again"
            assert held["wait"] is True
            late = {}

            def latecomer() -> None:  # asks after us: must not get ahead
                time.sleep(0.2)
                body = dict(ask)
                with httpx.Client(base_url=url, timeout=10) as other:
                    while "id" not in (answer := other.post("/v1/permits", json=body).json()):
                        body["since"] = answer["since"]
                    late["at"] = time.monotonic()

            thread = threading.Thread(target=latecomer)
            thread.start()
            time.sleep(1.0)  # the first call is still being answered: nothing can be granted
            http.post(f"/v1/permits/{first}/done")
            answered = time.monotonic()
            ours = None
            while ours is None:
                answer = http.post("/v1/permits", json={**ask, "since": held["since"]}).json()
                ours = answer.get("id")
            granted = time.monotonic()
            assert granted - answered >= 1.9  # one window from the answer, not from the permit
            http.post(f"/v1/permits/{ours}/done")
            thread.join(timeout=10)
            assert late["at"] > granted
            book = http.get("/healthz").json()["books"]["default/t"]
            assert (book["granted"], book["open"]) == (3, 1)  # the latecomer's: never reported
    finally:
        stop_process(proc)


def test_an_ask_is_held_no_longer_than_it_says_it_can_wait(pacer):
    ask = {"rate": "t", "windows": [[1, 60.0]]}
    with httpx.Client(base_url=pacer, timeout=10) as http:
        assert "id" in http.post("/v1/permits", json=ask).json()  # now nothing fits for a minute
        started = time.monotonic()
        held = http.post("/v1/permits", json={**ask, "hold": 0.3}).json()  # the pacer's own: 25 s
        assert held["wait"] is True and time.monotonic() - started < 5


@pytest.mark.parametrize(
    "body",
    [
        b'{"rate": "t", "windows": [[1, NaN]]}',
        b'{"rate": "t", "windows": [[1, 1.0]], "hold": Infinity}',
        b"[" * 5000 + b"]" * 5000,
        b'{"rate": "t", "windows": [[' + b"9" * 5000 + b", 1.0]]}",
        b"\xff\xfe",
    ],
    ids=["nan", "infinity", "deep", "huge-int", "not-utf8"],
)
def test_bad_bytes_get_a_400_and_the_pacer_keeps_granting(pacer, body):
    with httpx.Client(base_url=pacer, timeout=10) as http:
        refused = http.post("/v1/permits", content=body, headers={"Content-Type": "application/json"})
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "invalid-request-error"
        assert "id" in http.post("/v1/permits", json={"rate": "t", "windows": [[100, 1.0]]}).json()


async def test_unreachable_pacer_is_waited_for_loudly_never_bypassed(start_emulator, monkeypatch, caplog):
    emu = start_emulator(rate_limit_scale=1, connect_delay=0.05, answer_delay=0.05)
    room = _room(emu)
    monkeypatch.setenv("DAILY_RATE_LIMIT_SCALE", "1")
    monkeypatch.setenv("DAILY_PACER_URL", f"http://127.0.0.1:{free_port()}")  # nobody listens
    monkeypatch.setattr(ratelimit, "PACER_GIVE_UP_SECONDS", 2.0)
    async with DailyClient(emu.api_key, emu.base_url) as daily:
        from daily_sip.tasks.retries import paced_call

        with pytest.raises(PacerUnavailableError, match="was not sent"):
            await paced_call(DIALOUT_START, lambda: daily.start_dial_out(room, {"sipUri": "sip:a@b.example"}))
    assert "unreachable" in caplog.text and "no Daily call is sent without a permit" in caplog.text
    assert "POST /rooms/{name}/dialOut/start" not in emu.introspect("requests")["by_route"]


async def test_a_dead_pacer_is_named_once_and_skipped_by_the_calls_after_it(
    start_emulator, pacer, monkeypatch, caplog
):
    """Calls waiting together find the first pacer dead: one warning, and all go to the next."""
    emu = start_emulator(rate_limit_scale=10, session_limit=20, connect_delay=0.05, answer_delay=0.05)
    room = _room(emu)
    dead = f"http://127.0.0.1:{free_port()}"  # nobody listens
    monkeypatch.setenv("DAILY_RATE_LIMIT_SCALE", "10")
    monkeypatch.setenv("DAILY_PACER_URL", f"{dead},{pacer}")
    monkeypatch.setattr(ratelimit, "_preferred", {})
    async with DailyClient(emu.api_key, emu.base_url) as daily:
        from daily_sip.tasks.retries import paced_call

        await asyncio.gather(
            *(
                paced_call(
                    DIALOUT_START, lambda i=i: daily.start_dial_out(room, {"sipUri": f"sip:d{i}@b.example"})
                )
                for i in range(8)
            )
        )
        # Later calls of this process ask the pacer that answered, not the dead one first.
        await paced_call(DIALOUT_START, lambda: daily.start_dial_out(room, {"sipUri": "sip:late@b.example"}))
    named = [r.getMessage() for r in caplog.records if dead in r.getMessage() and r.levelname == "WARNING"]
    assert len(named) == 1 and f"asking {pacer} instead" in named[0], named
    assert emu.introspect("requests")["by_route"]["POST /rooms/{name}/dialOut/start"] == {"200": 9}


async def test_a_429_all_the_same_is_waited_out_not_a_failure(
    prefect_server, start_emulator, pacer, monkeypatch
):
    emu = start_emulator(rate_limit_scale=1, session_limit=10, connect_delay=0.05, answer_delay=0.05)
    room = _room(emu)
    monkeypatch.setenv("DAILY_RATE_LIMIT_SCALE", "1")
    monkeypatch.setenv("DAILY_PACER_URL", pacer)
    async with DailyClient(emu.api_key, emu.base_url) as daily:  # someone outside the pacer
        for i in range(5):
            await daily.start_dial_out(room, {"sipUri": f"sip:rogue-{i}@pbx.example.com"})
    creds = DailyCredentials(api_key=emu.api_key, api_url=emu.base_url)

    @flow
    async def one_dial():
        return await astart_dial_out(
            room, {"sipUri": "sip:ours@pbx.example.com"}, credentials=creds, return_state=True
        )

    state = await one_dial()
    assert state.is_completed(), state
    by_route = emu.introspect("requests")["by_route"]["POST /rooms/{name}/dialOut/start"]
    assert by_route["200"] == 6 and by_route["429"] >= 1
    health = await asyncio.to_thread(lambda: httpx.get(f"{pacer}/healthz").json())
    assert health["books"]["default/dialout-start"]["after_429"] >= 1


def test_a_pacer_killed_and_restarted_at_once_keeps_dailys_window(start_emulator, tmp_path):
    """kill -9 right after a full window was granted, restarted at once on the same address.

    A pacer that started from an empty book granted a second full window on top of the calls Daily
    had just counted (5 x 429 measured); one that reads its state file waits them out.
    """
    emu = start_emulator(rate_limit_scale=1, session_limit=30, connect_delay=0.05, answer_delay=0.05)
    room = _room(emu)
    args = ("--port", str(free_port()), "--state-file", str(tmp_path / "pacer.json"))
    proc, url = _start_pacer(*args)
    env = {**os.environ, "DAILY_PACER_URL": url, "DAILY_RATE_LIMIT_SCALE": "1"}
    campaigns = [
        subprocess.Popen(
            [sys.executable, "-c", CAMPAIGN_PROCESS, emu.base_url, emu.api_key, room, f"c{n}"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(5)
    ]
    try:
        with httpx.Client(base_url=url, timeout=5) as http:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # two full windows granted: the second just now
                books = http.get("/healthz").json()["books"]
                if books.get("default/dialout-start", {}).get("granted", 0) >= 10:
                    break
                time.sleep(0.02)
        proc.kill()  # SIGKILL: nothing is flushed on the way out
        proc.wait()
        proc, again = _start_pacer(*args)
        assert again == url
        for campaign in campaigns:
            _, err = campaign.communicate(timeout=120)
            assert campaign.returncode == 0, err[-2000:]
        requests = emu.introspect("requests")
        assert requests["by_route"]["POST /rooms/{name}/dialOut/start"] == {"200": 20}, requests
        assert requests["rate_limited"] == 0
        book = httpx.get(f"{url}/healthz").json()["books"]["default/dialout-start"]
        assert (book["granted"], book["open"]) == (20, 0)  # the first process's grants included
    finally:
        for campaign in campaigns:
            if campaign.poll() is None:
                campaign.kill()
        stop_process(proc)


@pytest.fixture
def redis_url() -> Iterator[str]:
    from benchmarks.ha import Redis, missing

    if why := missing():
        pytest.skip(why)
    redis = Redis.start()
    yield redis.url
    redis.stop()


def test_two_pacers_share_one_book_and_either_may_die(start_emulator, redis_url):
    """Two pacers on one Redis book; campaigns know both; one is killed after two windows."""
    emu = start_emulator(rate_limit_scale=1, session_limit=30, connect_delay=0.05, answer_delay=0.05)
    room = _room(emu)
    (first, a), (second, b) = (_start_pacer("--redis-url", redis_url) for _ in range(2))
    campaigns = [
        subprocess.Popen(
            [sys.executable, "-c", CAMPAIGN_PROCESS, emu.base_url, emu.api_key, room, f"c{n}"],
            env={
                **os.environ,
                "DAILY_PACER_URL": f"{a},{b}" if n % 2 else f"{b},{a}",
                "DAILY_RATE_LIMIT_SCALE": "1",
            },
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(5)
    ]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # one book: both pacers count the same grants
            books = httpx.get(f"{b}/healthz", timeout=5).json()["books"]
            if books.get("default/dialout-start", {}).get("granted", 0) >= 10:
                break
            time.sleep(0.02)
        first.kill()
        first.wait()
        warnings = []
        for campaign in campaigns:
            _, err = campaign.communicate(timeout=120)
            assert campaign.returncode == 0, err[-2000:]
            warnings.append(err.count("unreachable"))
        # The first ask to find the dead pacer warns and moves the process to the other pacer;
        # its other waiting calls do not warn again.
        assert max(warnings) <= 1, warnings
        requests = emu.introspect("requests")
        assert requests["by_route"]["POST /rooms/{name}/dialOut/start"] == {"200": 20}, requests
        assert requests["rate_limited"] == 0
        book = httpx.get(f"{b}/healthz").json()["books"]["default/dialout-start"]
        assert (book["granted"], book["open"]) == (20, 0)
        started = sorted(
            datetime.fromisoformat(leg["created_at"]) for leg in emu.introspect("legs", room=room)
        )
        assert all((started[i + 5] - started[i]).total_seconds() >= 4.9 for i in range(len(started) - 5))
    finally:
        for campaign in campaigns:
            if campaign.poll() is None:
                campaign.kill()
        stop_process(first)
        stop_process(second)
