"""``doctor --dial``: one real dial-out into a temporary room, and everything Daily sends back.

Records every webhook delivery (body, headers, arrival time, whether its signature checks out),
presence snapshots over time (does the leg appear, under which id, after how long, when does it
go), the answers to ``dialOut/start`` and ``dialOut/stop`` (also a stop of the call once it has
ended). Whatever it turns on it turns off on every exit path: the room is deleted, a webhook it
created is deleted, a webhook it took over gets its URL, secret, event types and retry type back.

Daily allows one webhook per domain (https://docs.daily.co/reference/rest-api/webhooks): a domain
whose webhook points elsewhere is only repointed with ``take_over_webhook``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr

from daily_sip.tasks import DailyCredentials
from daily_sip.tasks.client import DailyClient
from daily_sip.tasks.errors import DailyAPIError, DailyError
from daily_sip.tasks.models import StartDialOut, StopDialOut, Webhook, WebhookSettings
from daily_sip.tasks.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, Verifier

from .listener import Listener, listening
from .wire import WireLog, recording_client

#: What the far end must do for each scenario, said before dialling.
SCENARIOS = {
    "busy": "make the far end reject the call as busy (SIP 486), e.g. a phone already in a call or a "
    "PBX extension set to 'busy'; do not answer",
    "no-answer": "let it ring and do not pick up; the doctor waits --max-seconds (give it more than "
    "your carrier's ring timeout, usually 30-60 s) and then stops the call itself",
    "answer-hangup": "pick up, stay on the line for --hold-seconds, and let the doctor hang up; "
    "then dial again and hang up yourself first to see the far end's hang-up",
}
TERMINAL = ("dialout.stopped", "dialout.error")
#: What a dial records (https://docs.daily.co/reference/rest-api/webhooks/events).
DIAL_EVENTS = (
    "meeting.started",
    "meeting.ended",
    "participant.joined",
    "participant.left",
    "dialout.connected",
    "dialout.answered",
    "dialout.stopped",
    "dialout.error",
    "dialout.warning",
)


def _path(*parts: str) -> str:
    return "/" + "/".join(quote(p, safe="") for p in parts)


class DialSetupError(Exception):
    """Nothing was dialled: the message says why and what to do."""


@dataclass
class Recording:
    """The raw observation of one dial-out (not yet redacted: `fingerprint` does that)."""

    destination: str
    scenario: str | None
    room: str = ""
    user_id: str = ""
    display_name: str = "daily-sip doctor"
    session_id: str | None = None
    domain_id: str | None = None
    started_at: float = 0.0  # monotonic time of the dialOut/start request
    start: dict[str, Any] = field(default_factory=dict)
    stops: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    presence: list[dict[str, Any]] = field(default_factory=list)
    pings: int = 0
    other_rooms: int = 0
    cleanup: list[str] = field(default_factory=list)
    cleanup_failed: list[str] = field(default_factory=list)

    def event_types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def first(self, event_type: str) -> float | None:
        return next((e["after_s"] for e in self.events if e["type"] == event_type), None)


async def _raw(daily: DailyClient, method: str, path: str, body: Any = None) -> dict[str, Any]:
    """One call, its answer as data: ``{"status", "body"}`` or ``{"status", "error", "info"}``."""
    try:
        answer = await daily.request(method, path, json=body)
    except DailyAPIError as exc:
        return {"status": exc.status, "error": exc.error, "info": exc.info}
    except DailyError as exc:
        return {"status": None, "error": type(exc).__name__, "info": str(exc)}
    return {"status": 200, "body": answer}


class _Webhook:
    """Points the domain's webhook at the listener for the dial, and back afterwards."""

    def __init__(self, daily: DailyClient, url: str, take_over: bool, rec: Recording) -> None:
        self.daily, self.url, self.take_over, self.rec = daily, url, take_over, rec
        self.secret = SecretStr(base64.b64encode(secrets.token_bytes(32)).decode())
        self.created: str | None = None
        self.previous: Webhook | None = None

    async def __aenter__(self) -> SecretStr:
        hooks = await self.daily.list_webhooks()
        hook = hooks[0] if hooks else None
        settings = WebhookSettings(url=self.url, hmac=self.secret)
        if hook is None:
            self.created = (await self._refused_is_setup_error(self.daily.create_webhook(settings))).uuid
            self.rec.cleanup.append("created a temporary webhook")
            return self.secret
        if hook.url == self.url and hook.hmac is not None:
            # The same URL again re-activates a FAILED webhook.
            await self._refused_is_setup_error(
                self.daily.update_webhook(hook.uuid, WebhookSettings(url=self.url))
            )
            return hook.hmac
        if not self.take_over:
            raise DialSetupError(
                f"the domain's webhook points at {hook.url}; --dial needs Daily's events at {self.url}: "
                "add --take-over-webhook (it is pointed back afterwards, URL, secret, event types and "
                "retry type), or run it on a domain whose webhook is free"
            )
        self.previous = hook
        # Its event types may leave out what the dial must see; they are restored afterwards.
        settings = WebhookSettings(url=self.url, hmac=self.secret, event_types=list(DIAL_EVENTS))
        await self._refused_is_setup_error(self.daily.update_webhook(hook.uuid, settings))
        self.rec.cleanup.append(f"took over the webhook (was {hook.url})")
        return self.secret

    async def _refused_is_setup_error(self, call: Awaitable[Webhook]) -> Webhook:
        try:
            return await call
        except DailyError as exc:
            raise DialSetupError(
                f"Daily refused the webhook at {self.url} ({exc}); Daily pings that URL first and wants "
                "200 within seconds: give --webhook-url a public URL that forwards to --listen-port"
            ) from None

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self.created:
                await self.daily.delete_webhook(self.created)
                self.rec.cleanup.append("deleted the temporary webhook")
            elif self.previous is not None:
                p = self.previous
                await self.daily.update_webhook(
                    p.uuid,
                    WebhookSettings.model_validate(
                        {"url": p.url, "hmac": p.hmac, "eventTypes": p.event_types, "retryType": p.retry_type}
                    ),
                )
                self.rec.cleanup.append(f"pointed the webhook back at {p.url}")
        except DailyError as exc:
            what = self.previous.url if self.previous else "the temporary webhook"
            self.rec.cleanup_failed.append(
                f"the webhook could not be restored ({exc}); set it back to {what} in the dashboard"
            )


def _collect(listener: Listener, verifier: Verifier, rec: Recording, seen: int) -> int:
    """Move new deliveries for our room into the recording; returns how many were looked at."""
    for d in listener.deliveries[seen:]:
        try:
            event = json.loads(d.body)
        except ValueError:
            event = None
        if not isinstance(event, dict) or "type" not in event:
            rec.pings += 1
            continue
        payload = event.get("payload") or {}
        if payload.get("room") != rec.room:
            rec.other_rooms += 1  # the webhook is domain-wide; other rooms are not ours to keep
            continue
        verdict = verifier.check(
            d.headers.get(TIMESTAMP_HEADER.lower()),
            d.headers.get(SIGNATURE_HEADER.lower()),
            d.body,
            time.time(),
        )
        rec.events.append(
            {
                "type": event["type"],
                "after_s": round(d.at - rec.started_at, 3),
                "received_unix": time.time(),
                "envelope": event,
                "headers": d.headers,
                "signature_ok": verdict is None,
                "non_ascii_escaped": b"\\u" in d.body,
            }
        )
        rec.domain_id = rec.domain_id or payload.get("domain_id")
    return len(listener.deliveries)


async def _snapshot(daily: DailyClient, rec: Recording) -> None:
    answer = await _raw(daily, "GET", _path("rooms", rec.room, "presence"))
    data = answer.get("body")
    people = data.get("data", []) if isinstance(data, dict) else []
    rec.presence.append(
        {"after_s": round(time.monotonic() - rec.started_at, 3), "status": answer["status"], "data": people}
    )


async def dial(
    creds: DailyCredentials,
    destination: str,
    *,
    scenario: str | None,
    webhook_url: str | None,
    take_over_webhook: bool,
    listen_host: str = "127.0.0.1",
    listen_port: int = 0,
    max_seconds: float = 90.0,
    hold_seconds: float = 10.0,
    presence_interval: float = 2.0,
    settle_seconds: float = 30.0,
    log: WireLog | None = None,
    say: Any = print,
) -> Recording:
    """Place one dial-out to ``destination`` and record what Daily sends back (see module doc)."""
    rec = Recording(destination=destination, scenario=scenario)
    rec.room = f"daily-sip-doctor-dial-{uuid.uuid4().hex[:10]}"
    rec.user_id = f"daily-sip-doctor-{uuid.uuid4().hex[:8]}"
    body = StartDialOut.model_validate(
        {"sipUri": destination, "displayName": rec.display_name, "userId": rec.user_id}
    ).to_body()
    log = log or WireLog()
    async with (
        listening(listen_host, listen_port) as listener,
        recording_client(creds.api_key, creds.api_url, log, creds.timeout_seconds) as daily,
    ):
        url = webhook_url or listener.url
        say(f"listening for Daily's webhooks at {listener.url} (Daily sends them to {url})")
        async with _Webhook(daily, url, take_over_webhook, rec) as secret:
            verifier = Verifier(secret, max_age_seconds=None)
            lifetime = int(max_seconds + hold_seconds + settle_seconds + 60)
            props = {
                "enable_dialout": True,
                "dialout_config": {"allow_room_start": True, "max_idle_timeout_sec": lifetime},
                "exp": int(time.time()) + lifetime + 600,
                "eject_at_room_exp": True,
            }
            try:
                await daily.create_room(rec.room, properties=props)
            except DailyError as exc:
                raise DialSetupError(f"the dial's room could not be created: {exc}") from None
            rec.cleanup.append(f"created room {rec.room}")
            try:
                await _call(
                    daily,
                    listener,
                    verifier,
                    rec,
                    body,
                    max_seconds,
                    hold_seconds,
                    presence_interval,
                    settle_seconds,
                    say,
                )
            finally:
                try:
                    await daily.delete_room(rec.room)
                    rec.cleanup.append(f"deleted room {rec.room}")
                except DailyError as exc:
                    rec.cleanup_failed.append(f"room {rec.room} not deleted ({exc}); it expires by itself")
    return rec


async def _call(
    daily: DailyClient,
    listener: Listener,
    verifier: Verifier,
    rec: Recording,
    body: dict[str, Any],
    max_seconds: float,
    hold_seconds: float,
    presence_interval: float,
    settle_seconds: float,
    say: Any,
) -> None:
    seen = len(listener.deliveries)
    rec.started_at = time.monotonic()
    rec.start = await _raw(daily, "POST", _path("rooms", rec.room, "dialOut", "start"), body)
    started = rec.start.get("body") or {}
    rec.session_id = started.get("sessionId") if isinstance(started, dict) else None
    if rec.start["status"] != 200:
        say(
            f"dialOut/start refused: HTTP {rec.start['status']} "
            f"{rec.start.get('error')}: {rec.start.get('info')}"
        )
        await asyncio.sleep(min(settle_seconds, 5))
        _collect(listener, verifier, rec, seen)
        return
    say(f"dialling {rec.destination} (session {rec.session_id}) ...")
    deadline = rec.started_at + max_seconds
    next_poll = rec.started_at
    stopped_at: float | None = None
    while True:
        now = time.monotonic()
        if now >= next_poll:
            await _snapshot(daily, rec)
            next_poll = now + presence_interval
        seen = _collect(listener, verifier, rec, seen)
        ended = any(t in TERMINAL for t in rec.event_types())
        answered = rec.first("dialout.answered")
        if stopped_at is None and not ended:
            hold_over = answered is not None and now - rec.started_at >= answered + hold_seconds
            if hold_over or now >= deadline:
                why = "the hold is over" if hold_over else "--max-seconds passed"
                say(f"{why}: dialOut/stop")
                stopped_at = await _stop(daily, rec, "while up")
        if ended and stopped_at is None:
            stopped_at = time.monotonic()  # the far end (or Daily) ended it: settle from here
        if stopped_at is not None and (time.monotonic() - stopped_at >= settle_seconds or _gone(rec, ended)):
            break
        await asyncio.sleep(0.2)
    await _stop(daily, rec, "after the end")  # what Daily says to a stop of an ended call
    await _snapshot(daily, rec)
    _collect(listener, verifier, rec, seen)


def _gone(rec: Recording, ended: bool) -> bool:
    """Ended by an event, listed by presence at some point, and no longer by the last snapshot taken
    after the end. A leg presence never listed keeps the doctor polling until ``settle_seconds``:
    presence may lag 10-25 s behind (https://docs.daily.co/reference/rest-api/presence)."""
    if not ended or not rec.presence:
        return False
    end = rec.first("dialout.stopped") or rec.first("dialout.error") or 0
    last = rec.presence[-1]
    ever_listed = any(is_leg(p, rec) for snap in rec.presence for p in snap["data"])
    return ever_listed and last["after_s"] > end and not any(is_leg(p, rec) for p in last["data"])


def is_leg(person: dict[str, Any], rec: Recording) -> bool:
    return (
        person.get("id") == rec.session_id
        or rec.user_id in (person.get("userId"), person.get("user_id"))
        or rec.display_name in (person.get("userName"), person.get("user_name"))
    )


async def _stop(daily: DailyClient, rec: Recording, when: str) -> float:
    if rec.session_id:
        body = StopDialOut(session_id=rec.session_id).to_body()
        answer = await _raw(daily, "POST", _path("rooms", rec.room, "dialOut", "stop"), body)
        rec.stops.append({"when": when, "after_s": round(time.monotonic() - rec.started_at, 3), **answer})
    return time.monotonic()
