"""State and behaviour of the imitated Daily domain, with no HTTP in sight.

Everything runs on one thread (the server's event loop), so nothing here locks.
Time comes from an injectable `Clock` and delayed work goes through an injectable
`Scheduler`, so tests can drive a whole call with `ManualScheduler.advance()`.
Events (the future webhook payloads) leave through `Backend.subscribe` listeners.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import heapq
import itertools
import random
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import unquote

from .config import EmulatorConfig

# ---------------------------------------------------------------------------
# errors, time, scheduling
# ---------------------------------------------------------------------------


class ApiError(Exception):
    """A Daily API error: becomes an HTTP `status` with body `{"error", "info"}`."""

    def __init__(self, status: int, error: str, info: str, **extra: Any) -> None:
        super().__init__(f"{status} {error}: {info}")
        self.status = status
        self.error = error
        self.info = info
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "info": self.info, **self.extra}


def invalid(info: str) -> ApiError:
    return ApiError(400, "invalid-request-error", info)


def not_found(info: str, **extra: Any) -> ApiError:
    return ApiError(404, "not-found", info, **extra)


NOT_HOSTING = "Room is not hosting a call"


class Clock(Protocol):
    def now(self) -> float: ...


class SystemClock:
    """Wall-clock unix seconds."""

    def now(self) -> float:
        return time.time()


class FakeClock:
    """A clock that only moves when told to (for tests)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    def call_later(self, delay: float, fn: Callable[[], None]) -> TimerHandle: ...


class AsyncioScheduler:
    """Runs callbacks on the running event loop via `loop.call_later`."""

    def call_later(self, delay: float, fn: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, delay), fn)


@dataclass(order=True)
class _ManualTimer:
    due: float
    seq: int
    fn: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class ManualScheduler:
    """Deterministic scheduler for tests: nothing runs until `advance()`."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self._heap: list[_ManualTimer] = []
        self._seq = itertools.count()

    def call_later(self, delay: float, fn: Callable[[], None]) -> TimerHandle:
        timer = _ManualTimer(self.clock.now() + max(0.0, delay), next(self._seq), fn)
        heapq.heappush(self._heap, timer)
        return timer

    def advance(self, seconds: float) -> None:
        """Move the clock forward, firing due callbacks in time order."""
        target = self.clock.now() + seconds
        while self._heap and self._heap[0].due <= target:
            timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            self.clock.t = max(self.clock.t, timer.due)
            timer.fn()
        self.clock.t = target

    @property
    def pending(self) -> int:
        return sum(1 for t in self._heap if not t.cancelled)


def iso(ts: float | None) -> str | None:
    """ISO 8601 with milliseconds and `Z`, like Daily's `created_at`."""
    if ts is None:
        return None
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


# ---------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def check_bool(path: str, v: Any) -> None:
    if not isinstance(v, bool):
        raise invalid(f"'{path}' must be a boolean")


def check_str(path: str, v: Any, max_len: int | None = None) -> None:
    if not isinstance(v, str):
        raise invalid(f"'{path}' must be a string")
    if max_len is not None and len(v) > max_len:
        raise invalid(f"'{path}' must be at most {max_len} characters")


def check_int(path: str, v: Any, lo: int | None = None, hi: int | None = None) -> None:
    if not _is_int(v):
        raise invalid(f"'{path}' must be an integer")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise invalid(f"'{path}' must be between {lo} and {hi}, got {v}")


def check_number(path: str, v: Any, lo: float | None = None) -> None:
    if not _is_number(v):
        raise invalid(f"'{path}' must be a number")
    if lo is not None and v < lo:
        raise invalid(f"'{path}' must be >= {lo}, got {v}")


def check_object(path: str, v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise invalid(f"'{path}' must be an object")
    return v


def check_keys(path: str, obj: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        where = f" in '{path}'" if path else ""
        raise invalid(
            f"unknown field(s){where}: {', '.join(repr(k) for k in unknown)}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


AUDIO_CODECS = {"OPUS", "G722", "PCMU", "PCMA"}
VIDEO_CODECS = {"H264", "VP8"}


def check_codecs(path: str, v: Any) -> None:
    obj = check_object(path, v)
    check_keys(path, obj, {"audio", "video"})
    for kind, allowed in (("audio", AUDIO_CODECS), ("video", VIDEO_CODECS)):
        if kind not in obj:
            continue
        codecs = obj[kind]
        if not isinstance(codecs, list) or not all(isinstance(c, str) for c in codecs):
            raise invalid(f"'{path}.{kind}' must be a list of strings")
        bad = [c for c in codecs if c not in allowed]
        if bad:
            raise invalid(f"'{path}.{kind}' has unsupported codec(s) {bad}; allowed: {sorted(allowed)}")


def _bool_prop(path: str, v: Any) -> None:
    check_bool(path, v)


def _int_prop(path: str, v: Any) -> None:
    check_int(path, v)


def _num_prop(path: str, v: Any) -> None:
    check_number(path, v)


def _str_prop(path: str, v: Any) -> None:
    check_str(path, v)


def _obj_prop(path: str, v: Any) -> None:
    check_object(path, v)


def _list_prop(path: str, v: Any) -> None:
    if not isinstance(v, list):
        raise invalid(f"'{path}' must be a list")


MAX_NUM_ENDPOINTS = 20
SIP_PROVIDERS = {"daily", "signalwire"}


def _check_sip(path: str, v: Any) -> None:
    obj = check_object(path, v)
    check_keys(
        path,
        obj,
        {
            "display_name",
            "sip_mode",
            "video",
            "num_endpoints",
            "codecs",
            "provider",
            "force_digit_only_username",
            "dialin_config",
        },
    )
    if "sip_mode" in obj and obj["sip_mode"] != "dial-in":
        raise invalid(f"'{path}.sip_mode' must be \"dial-in\", got {obj['sip_mode']!r}")
    if "display_name" in obj:
        check_str(f"{path}.display_name", obj["display_name"], 200)
    if "video" in obj:
        check_bool(f"{path}.video", obj["video"])
    if "num_endpoints" in obj:
        check_int(f"{path}.num_endpoints", obj["num_endpoints"], 1, MAX_NUM_ENDPOINTS)
    if "codecs" in obj:
        check_codecs(f"{path}.codecs", obj["codecs"])
    if "provider" in obj and obj["provider"] not in SIP_PROVIDERS:
        raise invalid(f"'{path}.provider' must be one of {sorted(SIP_PROVIDERS)}")
    if "force_digit_only_username" in obj:
        check_bool(f"{path}.force_digit_only_username", obj["force_digit_only_username"])
        if obj["force_digit_only_username"] and obj.get("num_endpoints", 1) > 1:
            raise invalid(
                f"'{path}.force_digit_only_username' cannot be used with '{path}.num_endpoints' > 1"
            )
    if "dialin_config" in obj:
        sub = check_object(f"{path}.dialin_config", obj["dialin_config"])
        p = f"{path}.dialin_config"
        check_keys(
            p,
            sub,
            {
                "allow_room_start",
                "dialin_geo",
                "max_idle_timeout_sec",
                "max_idle_timeout_post_conversation_sec",
                "hold_music_enabled",
            },
        )
        for key in ("allow_room_start", "hold_music_enabled"):
            if key in sub:
                check_bool(f"{p}.{key}", sub[key])
        if "dialin_geo" in sub:
            check_str(f"{p}.dialin_geo", sub["dialin_geo"])
        for key in ("max_idle_timeout_sec", "max_idle_timeout_post_conversation_sec"):
            if key in sub:
                check_number(f"{p}.{key}", sub[key], 0)


def _check_dialout_config(path: str, v: Any) -> None:
    obj = check_object(path, v)
    check_keys(
        path,
        obj,
        {
            "allow_room_start",
            "dialout_geo",
            "max_idle_timeout_sec",
            "max_idle_timeout_post_conversation_sec",
        },
    )
    if "allow_room_start" in obj:
        check_bool(f"{path}.allow_room_start", obj["allow_room_start"])
    if "dialout_geo" in obj:
        check_str(f"{path}.dialout_geo", obj["dialout_geo"])
    for key in ("max_idle_timeout_sec", "max_idle_timeout_post_conversation_sec"):
        if key in obj:
            check_number(f"{path}.{key}", obj[key], 0)


def _check_dialin(path: str, v: Any) -> None:
    obj = check_object(path, v)
    check_keys(path, obj, {"display_name", "wait_for_meeting_start"})
    if "display_name" in obj:
        check_str(f"{path}.display_name", obj["display_name"])
    if "wait_for_meeting_start" in obj:
        check_bool(f"{path}.wait_for_meeting_start", obj["wait_for_meeting_start"])


def _check_privacy(path: str, v: Any) -> None:
    if v not in ("public", "private"):
        raise invalid(f'\'{path}\' must be "public" or "private"')


_BOOL_PROPS = (
    "eject_at_room_exp enable_dialout enable_people_ui enable_pip_ui enable_emoji_reactions "
    "enable_hand_raising enable_prejoin_ui enable_live_captions_ui enable_network_ui "
    "enable_noise_cancellation_ui enable_breakout_rooms enable_knocking enable_screenshare "
    "enable_video_processing_ui enable_chat enable_shared_chat_history enable_advanced_chat "
    "enable_hidden_participants enable_mesh_sfu enable_adaptive_simulcast "
    "enable_multiparty_adaptive_simulcast enforce_unique_user_ids "
    "experimental_optimize_large_calls start_video_off start_audio_off owner_only_broadcast "
    "disable_rtmp_geo_fallback enable_terse_logging enable_transcription_storage "
    "auto_start_transcription"
).split()
_STR_PROPS = (
    "enable_recording lang geo rtmp_geo signaling_impl meeting_join_hook recordings_template"
).split()
_OBJ_PROPS = ("recordings_bucket transcription_bucket permissions auto_transcription_settings").split()

#: Room properties this stand-in accepts, each with its validator. The SIP and dial-out
#: ones are checked strictly; the rest only for their JSON type.
ROOM_PROPERTIES: dict[str, Callable[[str, Any], None]] = {
    "nbf": _int_prop,
    "exp": _int_prop,
    "max_participants": lambda p, v: check_int(p, v, 1, 100_000),
    "eject_after_elapsed": lambda p, v: check_int(p, v, 0),
    "sfu_switchover": _num_prop,
    "streaming_endpoints": _list_prop,
    "sip": _check_sip,
    "dialout_config": _check_dialout_config,
    "dialin": _check_dialin,
    **{name: _bool_prop for name in _BOOL_PROPS},
    **{name: _str_prop for name in _STR_PROPS},
    **{name: _obj_prop for name in _OBJ_PROPS},
}

ROOM_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
PHONE_RE = re.compile(r"^\+[1-9]\d{1,14}$")
TONES_RE = re.compile(r"^[0-9A-D*#]{1,20}$")
EXTENSION_RE = re.compile(r"^[0-9*#]{1,20}$")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def validate_properties(props: Any) -> dict[str, Any]:
    """Check a `properties` object; returns it. `None` values mean "unset"."""
    props = check_object("properties", props)
    for name, value in props.items():
        if name == "sip_uri":
            raise invalid("'sip_uri' is read-only: it is set by Daily when 'sip' is configured")
        check = ROOM_PROPERTIES.get(name)
        if check is None:
            raise invalid(f"unknown room property {name!r}")
        if value is None:
            continue
        check(name, value)
    return props


# ---------------------------------------------------------------------------
# SIP URIs and the magic outcomes
# ---------------------------------------------------------------------------

#: User parts of a dial-out SIP URI that pick a scripted outcome (see README).
MAGIC_OUTCOMES = ("noanswer", "notfound", "busy", "hangup")
DEFAULT_OUTCOME = "answer"
_FAILURES = {
    "busy": (486, "SIP 486 Busy Here"),
    "notfound": (404, "SIP 404 Not Found"),
    "noanswer": (408, "SIP 408 Request Timeout"),
}


def outcome_for(user_part: str) -> str:
    """Magic keyword chosen by a SIP user part: `busy`, `busy-2`, `noanswer.x` ... else answer."""
    user = user_part.lower()
    for keyword in MAGIC_OUTCOMES:
        if user == keyword:
            return keyword
        if user.startswith(keyword):
            nxt = user[len(keyword)]
            if not (nxt.isascii() and nxt.isalnum()):
                return keyword
    return DEFAULT_OUTCOME


@dataclass
class SipUri:
    """The parts of a dial-out `sipUri` the stand-in cares about."""

    uri: str
    user: str
    host: str
    headers: dict[str, str]


def parse_sip_uri(uri: Any, path: str = "sipUri") -> SipUri:
    """Validate a dial-out SIP URI the way Daily documents it; 400 on anything off."""
    check_str(path, uri)
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in uri):
        raise invalid(f"'{path}' must not contain spaces or control characters")
    if not uri.lower().startswith("sip:"):
        raise invalid(f"'{path}' must start with 'sip:', got {uri!r}")
    rest = uri[4:]
    base, _, query = rest.partition("?")
    userinfo, at, hostpart = base.rpartition("@")
    if not at:
        userinfo, hostpart = "", base
    host = hostpart.split(";", 1)[0]
    if not host:
        raise invalid(f"'{path}' has no host: {uri!r}")
    user = userinfo.split(":", 1)[0].split(";", 1)[0]
    headers: dict[str, str] = {}
    if query:
        for part in query.split("&"):
            name, _, value = part.partition("=")
            if not name.lower().startswith("x-") or len(name) < 3:
                raise invalid(
                    f"'{path}' query parameter {name!r} is not allowed: parameters become SIP "
                    "headers and must be X- prefixed (e.g. ?X-My-Header=1)"
                )
            headers[name] = unquote(value)
    return SipUri(uri=uri, user=unquote(user), host=host, headers=headers)


def _check_endpoint(path: str, v: Any) -> None:
    check_str(path, v)
    if v.lower().startswith("sip:"):
        parse_sip_uri(v, path)
    elif not PHONE_RE.match(v):
        raise invalid(f"'{path}' must be a sip: URI or an E.164 phone number, got {v!r}")


# ---------------------------------------------------------------------------
# state objects
# ---------------------------------------------------------------------------


@dataclass
class Event:
    """One event as Daily would push it (the webhook envelope minus `event_ts`)."""

    id: str
    type: str
    payload: dict[str, Any]
    created_at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "payload": self.payload,
            "created_at": iso(self.created_at),
        }


@dataclass
class Session:
    """A live meeting in a room."""

    meeting_id: str
    start_ts: float


@dataclass
class Participant:
    """Anyone in a room: a dial-out leg, a dial-in caller or a simulated web user."""

    id: str
    room: str
    kind: str  # "dialout" | "dialin" | "web"
    user_id: str | None
    user_name: str | None
    joined_at: float
    mtg_session_id: str | None = None


ACTIVE_STATES = {"dialing", "ringing", "answered", "connected"}


@dataclass
class Leg(Participant):
    """A SIP/PSTN leg: a dial-out started over REST or a simulated dial-in caller."""

    destination: str | None = None
    origin: str | None = None
    caller_id: str | None = None
    state: str = "dialing"
    outcome: str = DEFAULT_OUTCOME
    sip_code: int | None = None
    error_msg: str | None = None
    end_reason: str | None = None
    sip_headers: dict[str, str] = field(default_factory=dict)
    sip_from: str | None = None
    endpoint: str | None = None
    video: bool = False
    codecs: dict[str, Any] | None = None
    events: list[str] = field(default_factory=list)
    dtmf: list[dict[str, Any]] = field(default_factory=list)
    transfers: list[dict[str, Any]] = field(default_factory=list)
    connected_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    timer: TimerHandle | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "room": self.room,
            "kind": self.kind,
            "destination": self.destination,
            "origin": self.origin,
            "userId": self.user_id,
            "displayName": self.user_name,
            "callerId": self.caller_id,
            "state": self.state,
            "active": self.active,
            "outcome": self.outcome,
            "sip_code": self.sip_code,
            "error_msg": self.error_msg,
            "end_reason": self.end_reason,
            "sip_headers": self.sip_headers,
            "sip_from": self.sip_from,
            "endpoint": self.endpoint,
            "events": list(self.events),
            "dtmf": list(self.dtmf),
            "transfers": list(self.transfers),
            "created_at": iso(self.joined_at),
            "connected_at": iso(self.connected_at),
            "answered_at": iso(self.answered_at),
            "ended_at": iso(self.ended_at),
        }


@dataclass
class Room:
    """A Daily room with only the properties that were set."""

    id: str
    name: str
    seq: int
    created_at: float
    privacy: str = "public"
    properties: dict[str, Any] = field(default_factory=dict)
    sip_endpoints: list[str] = field(default_factory=list)
    session: Session | None = None
    participants: dict[str, Participant] = field(default_factory=dict)
    exp_timer: TimerHandle | None = field(default=None, repr=False)

    @property
    def sip(self) -> dict[str, Any] | None:
        return self.properties.get("sip")

    def sip_legs(self) -> list[Leg]:
        return [p for p in self.participants.values() if isinstance(p, Leg) and p.active]


@dataclass
class Webhook:
    """The domain's webhook registration (Daily allows one per domain)."""

    uuid: str
    url: str
    hmac: str
    basic_auth: str | None
    retry_type: str
    event_types: list[str]
    created_at: float
    updated_at: float
    state: str = "ACTIVE"
    failed_count: int = 0
    last_moment_pushed: float | None = None

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types

    def to_json(self, domain_id: str) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "url": self.url,
            "hmac": self.hmac,
            "basicAuth": self.basic_auth,
            "retryType": self.retry_type,
            "eventTypes": list(self.event_types),
            "state": self.state,
            "failedCount": self.failed_count,
            "lastMomentPushed": iso(self.last_moment_pushed),
            "domainId": domain_id,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
        }


EVENT_FAMILIES = (
    "meeting",
    "participant",
    "waiting-participant",
    "recording",
    "transcript",
    "streaming",
    "batch-processor",
    "dialout",
    "dialin",
    "calltransfer",
)
WEBHOOK_FIELDS = {"url", "eventTypes", "hmac", "basicAuth", "retryType"}
RETRY_TYPES = ("circuit-breaker", "exponential")
CIRCUIT_BREAKER_LIMIT = 3


class WebhookRegistry:
    """Webhook registrations and their health counters; delivery lives in webhooks.py."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.hooks: dict[str, Webhook] = {}

    @staticmethod
    def validate(body: Any, *, creating: bool) -> dict[str, Any]:
        """Check a create/update body; returns only the fields that were given."""
        body = check_object("body", body)
        check_keys("", body, WEBHOOK_FIELDS)
        if creating and "url" not in body:
            raise invalid("'url' is required")
        spec: dict[str, Any] = {}
        if "url" in body:
            url = body["url"]
            check_str("url", url)
            if not re.match(r"^https?://[^\s/]+", url):
                raise invalid(f"'url' must be an http(s) URL, got {url!r}")
            spec["url"] = url
        if "eventTypes" in body and body["eventTypes"] is not None:
            types = body["eventTypes"]
            if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
                raise invalid("'eventTypes' must be a list of strings")
            for t in types:
                family, dot, rest = t.partition(".")
                if not dot or not rest or family not in EVENT_FAMILIES:
                    raise invalid(f"'eventTypes' has unknown event type {t!r}")
            spec["eventTypes"] = list(dict.fromkeys(types))
        if "hmac" in body and body["hmac"] is not None:
            secret = body["hmac"]
            check_str("hmac", secret)
            try:
                decoded = base64.b64decode(secret, validate=True)
            except (binascii.Error, ValueError):
                raise invalid("'hmac' must be a base64-encoded secret") from None
            if not decoded:
                raise invalid("'hmac' must not be empty")
            spec["hmac"] = secret
        if "basicAuth" in body:
            if body["basicAuth"] is not None:
                check_str("basicAuth", body["basicAuth"])
            spec["basicAuth"] = body["basicAuth"]
        if "retryType" in body:
            if body["retryType"] not in RETRY_TYPES:
                raise invalid(f"'retryType' must be one of {list(RETRY_TYPES)}")
            spec["retryType"] = body["retryType"]
        return spec

    @staticmethod
    def new_secret() -> str:
        return base64.b64encode(secrets.token_bytes(32)).decode()

    def list(self) -> list[Webhook]:
        return list(self.hooks.values())

    def get(self, hook_id: str) -> Webhook:
        hook = self.hooks.get(hook_id)
        if hook is None:
            raise not_found(f"webhook {hook_id} not found")
        return hook

    def ensure_can_create(self) -> None:
        if self.hooks:
            existing = next(iter(self.hooks))
            raise invalid(
                f"a domain can only have one webhook; {existing} already exists "
                "(update it with POST /webhooks/:uuid or delete it first)"
            )

    def create(self, spec: dict[str, Any]) -> Webhook:
        self.ensure_can_create()
        now = self.clock.now()
        hook = Webhook(
            uuid=str(uuid.uuid4()),
            url=spec["url"],
            hmac=spec.get("hmac") or self.new_secret(),
            basic_auth=spec.get("basicAuth"),
            retry_type=spec.get("retryType", "circuit-breaker"),
            event_types=spec.get("eventTypes", []),
            created_at=now,
            updated_at=now,
        )
        self.hooks[hook.uuid] = hook
        return hook

    def update(self, hook_id: str, spec: dict[str, Any]) -> Webhook:
        """Apply an update that passed verification; also re-activates a FAILED hook."""
        hook = self.get(hook_id)
        hook.url = spec.get("url", hook.url)
        hook.hmac = spec.get("hmac", hook.hmac)
        hook.basic_auth = spec.get("basicAuth", hook.basic_auth)
        hook.retry_type = spec.get("retryType", hook.retry_type)
        hook.event_types = spec.get("eventTypes", hook.event_types)
        hook.state = "ACTIVE"
        hook.failed_count = 0
        hook.updated_at = self.clock.now()
        return hook

    def delete(self, hook_id: str) -> Webhook:
        hook = self.get(hook_id)
        del self.hooks[hook_id]
        return hook

    def record_success(self, hook: Webhook) -> None:
        hook.failed_count = 0
        hook.last_moment_pushed = self.clock.now()

    def record_failure(self, hook: Webhook) -> bool:
        """Count a failed delivery; True when this failure trips the circuit breaker."""
        hook.failed_count += 1
        if (
            hook.retry_type == "circuit-breaker"
            and hook.state == "ACTIVE"
            and hook.failed_count >= CIRCUIT_BREAKER_LIMIT
        ):
            hook.state = "FAILED"
            return True
        return False


# ---------------------------------------------------------------------------
# the backend
# ---------------------------------------------------------------------------

DIALOUT_FIELDS = {
    "sipUri",
    "phoneNumber",
    "extension",
    "waitBeforeExtensionDialSec",
    "displayName",
    "userId",
    "callerId",
    "video",
    "videoSettings",
    "codecs",
    "permissions",
}
VIDEO_SETTINGS_LIMITS = {"width": 1280, "height": 720, "fps": 30, "videoBitrate": 1000}
DEFAULT_PSTN_ORIGIN = "+15550100000"


class Backend:
    """The whole imitated Daily domain: rooms, calls, presence and webhook registry.

    Public methods mirror REST endpoints and raise `ApiError` like Daily would.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        clock: Clock | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.config = config or EmulatorConfig()
        self.clock = clock or SystemClock()
        self.scheduler = scheduler or AsyncioScheduler()
        self.domain_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{self.config.domain_name}.daily.co"))
        self.webhooks = WebhookRegistry(self.clock)
        self._listeners: list[Callable[[Event], None]] = []
        self._init_state()

    def _init_state(self) -> None:
        self.rooms: dict[str, Room] = {}
        self.legs: dict[str, Leg] = {}
        self.web_participants: dict[str, Participant] = {}
        self.events: list[Event] = []
        self._room_seq_by_id: dict[str, int] = {}
        self._seq = itertools.count(1)
        self._event_seq = itertools.count(1)

    # -- plumbing -------------------------------------------------------------

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        """Call `listener(event)` for every event emitted from now on."""
        self._listeners.append(listener)

    def reset(self) -> None:
        """Forget everything (rooms, calls, webhooks, events) without emitting events."""
        for leg in self.legs.values():
            if leg.timer:
                leg.timer.cancel()
        for room in self.rooms.values():
            if room.exp_timer:
                room.exp_timer.cancel()
        self.webhooks.hooks.clear()
        self._init_state()

    def emit(self, type_: str, payload: dict[str, Any], leg: Leg | None = None) -> Event:
        n = next(self._event_seq)
        event = Event(
            id=f"{n}-{type_.replace('.', '-')}-{uuid.uuid4()}",
            type=type_,
            payload=payload,
            created_at=self.clock.now(),
        )
        self.events.append(event)
        if leg is not None:
            leg.events.append(type_)
        for listener in self._listeners:
            listener(event)
        return event

    def _ts(self) -> str:
        # Daily's examples send `timestamp` as a string of unix seconds.
        return str(int(self.clock.now()))

    # -- rooms ----------------------------------------------------------------

    def _expired(self, room: Room) -> bool:
        exp = room.properties.get("exp")
        return exp is not None and exp <= self.clock.now()

    def get_room(self, name: str) -> Room:
        room = self.rooms.get(name)
        if room is None or self._expired(room):
            raise not_found(f"room {name} was not found")
        return room

    def room_json(self, room: Room) -> dict[str, Any]:
        config = dict(room.properties)
        if room.sip is not None and room.sip_endpoints:
            sip_uri: dict[str, Any] = {"endpoint": room.sip_endpoints[0]}
            if len(room.sip_endpoints) > 1:
                sip_uri["extra_endpoints"] = room.sip_endpoints[1:]
            config["sip_uri"] = sip_uri
        return {
            "id": room.id,
            "name": room.name,
            "api_created": True,
            "privacy": room.privacy,
            "url": f"https://{self.config.domain_name}.daily.co/{room.name}",
            "created_at": iso(room.created_at),
            "config": config,
        }

    def create_room(self, body: Any) -> Room:
        body = check_object("body", body or {})
        check_keys("", body, {"name", "privacy", "properties"})
        name = body.get("name")
        if name is None:
            name = "".join(
                random.choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=20)
            )
        check_str("name", name)
        if not ROOM_NAME_RE.match(name):
            raise invalid(f"room name {name!r} is invalid: use 1-128 characters from A-Z a-z 0-9 - _")
        existing = self.rooms.get(name)
        if existing is not None and not self._expired(existing):
            raise invalid(f"a room named {name} already exists")
        privacy = body.get("privacy", "public")
        _check_privacy("privacy", privacy)
        props = validate_properties(body.get("properties") or {})
        if existing is not None:
            self._remove_room(existing, reason="room-expired")
        now = self.clock.now()
        room = Room(
            id=str(uuid.uuid4()),
            name=name,
            seq=next(self._seq),
            created_at=now,
            privacy=privacy,
        )
        self._room_seq_by_id[room.id] = room.seq
        self.rooms[name] = room
        self._apply_properties(room, props)
        return room

    def update_room(self, name: str, body: Any) -> Room:
        room = self.get_room(name)
        body = check_object("body", body or {})
        check_keys("", body, {"privacy", "properties"})
        if "privacy" in body:
            _check_privacy("privacy", body["privacy"])
        props = validate_properties(body.get("properties") or {})
        if "privacy" in body:
            room.privacy = body["privacy"]
        self._apply_properties(room, props)
        return room

    def _apply_properties(self, room: Room, props: dict[str, Any]) -> None:
        sip_before = room.sip
        for key, value in props.items():
            if value is None:
                room.properties.pop(key, None)
            else:
                room.properties[key] = value
        if "sip" in props:
            self._sync_sip(room, sip_before)
        if "exp" in props or "eject_at_room_exp" in props:
            self._schedule_eject(room)

    def _endpoint_host(self, sip: dict[str, Any]) -> str:
        domain = self.config.domain_name
        if sip.get("provider") == "signalwire":
            return f"daily-{domain}-app.dapp.signalwire.com"
        return f"{domain}.sip.daily.co"

    def _new_endpoint(self, room: Room, sip: dict[str, Any], index: int) -> str:
        if sip.get("force_digit_only_username"):
            user = "".join(random.choices("0123456789", k=10))
        else:
            user = f"{room.name}.{index}"
        return f"sip:{user}@{self._endpoint_host(sip)}"

    def _sync_sip(self, room: Room, before: dict[str, Any] | None) -> None:
        """Recompute endpoints after `sip` changed; hang up callers on vanished ones."""
        after = room.sip
        old = list(room.sip_endpoints)
        if after is None:
            room.sip_endpoints = []
        else:
            same_shape = before is not None and all(
                before.get(k) == after.get(k) for k in ("provider", "force_digit_only_username")
            )
            keep = old if same_shape else []
            count = after.get("num_endpoints", 1)
            endpoints = keep[:count]
            while len(endpoints) < count:
                endpoints.append(self._new_endpoint(room, after, len(endpoints)))
            room.sip_endpoints = endpoints
        for leg in list(room.sip_legs()):
            if leg.kind == "dialin" and leg.endpoint not in room.sip_endpoints:
                self._end_leg(leg, "sip-disabled" if after is None else "endpoint-removed")
        if room.session is not None:
            for endpoint in room.sip_endpoints:
                if endpoint not in old:
                    self._emit_dialin_ready(room, endpoint)

    def _schedule_eject(self, room: Room) -> None:
        if room.exp_timer:
            room.exp_timer.cancel()
            room.exp_timer = None
        exp = room.properties.get("exp")
        if exp is None or not room.properties.get("eject_at_room_exp"):
            return

        def eject() -> None:
            if self.rooms.get(room.name) is room and room.properties.get("exp") == exp:
                self._kick_everyone(room, "room-expired")

        room.exp_timer = self.scheduler.call_later(exp - self.clock.now(), eject)

    def delete_room(self, name: str) -> dict[str, Any]:
        room = self.rooms.get(name)
        if room is None:
            raise not_found(f"room {name} was not found")
        if self._expired(room):
            self._remove_room(room, reason="room-deleted")
            raise not_found(f"room {name} was not found", deleted=True)
        self._remove_room(room, reason="room-deleted")
        return {"deleted": True, "name": name}

    def _remove_room(self, room: Room, reason: str) -> None:
        self._kick_everyone(room, reason)
        if room.exp_timer:
            room.exp_timer.cancel()
        self.rooms.pop(room.name, None)

    def _kick_everyone(self, room: Room, reason: str) -> None:
        for participant in list(room.participants.values()):
            if isinstance(participant, Leg):
                self._end_leg(participant, reason)
            else:
                self._leave(room, participant)

    def list_rooms(
        self,
        limit: Any = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> dict[str, Any]:
        """Newest first, Stripe-style cursors (see README for `ending_before`)."""
        if limit is None or limit == "":
            limit_n = 100
        else:
            try:
                limit_n = int(limit)
            except (TypeError, ValueError):
                raise invalid(f"'limit' must be an integer, got {limit!r}") from None
            if limit_n < 1:
                raise invalid(f"'limit' must be between 1 and 100, got {limit_n}")
            limit_n = min(limit_n, 100)
        if starting_after and ending_before:
            raise invalid("use only one of 'starting_after' and 'ending_before'")
        visible = sorted(
            (r for r in self.rooms.values() if not self._expired(r)),
            key=lambda r: r.seq,
            reverse=True,
        )
        if starting_after:
            cursor = self._cursor("starting_after", starting_after)
            page = [r for r in visible if r.seq < cursor][:limit_n]
        elif ending_before:
            cursor = 0 if ending_before == "OLDEST" else self._cursor("ending_before", ending_before)
            newer = [r for r in visible if r.seq > cursor]
            page = newer[-limit_n:]
        else:
            page = visible[:limit_n]
        return {"total_count": len(visible), "data": [self.room_json(r) for r in page]}

    def _cursor(self, param: str, room_id: str) -> int:
        seq = self._room_seq_by_id.get(room_id)
        if seq is None:
            raise invalid(f"'{param}' must be the id of a room, got {room_id!r}")
        return seq

    # -- sessions and participants ---------------------------------------------

    def _join(self, room: Room, participant: Participant) -> None:
        if room.session is None:
            room.session = Session(meeting_id=str(uuid.uuid4()), start_ts=self.clock.now())
            self.emit(
                "meeting.started",
                {
                    "start_ts": int(room.session.start_ts),
                    "meeting_id": room.session.meeting_id,
                    "room": room.name,
                },
            )
            for endpoint in room.sip_endpoints:
                self._emit_dialin_ready(room, endpoint)
        participant.mtg_session_id = room.session.meeting_id
        room.participants[participant.id] = participant

    def _leave(self, room: Room, participant: Participant) -> None:
        room.participants.pop(participant.id, None)
        self.web_participants.pop(participant.id, None)
        if not room.participants and room.session is not None:
            session, room.session = room.session, None
            self.emit(
                "meeting.ended",
                {
                    "start_ts": int(session.start_ts),
                    "end_ts": int(self.clock.now()),
                    "meeting_id": session.meeting_id,
                    "room": room.name,
                },
            )

    def _emit_dialin_ready(self, room: Room, endpoint: str) -> None:
        self.emit(
            "dialin.ready",
            {
                "timestamp": self._ts(),
                "domain_id": self.domain_id,
                "room": room.name,
                "sip_endpoint": endpoint,
            },
        )

    def _hosting_room(self, name: str) -> Room:
        room = self.get_room(name)
        if room.session is None:
            raise not_found(NOT_HOSTING)
        return room

    def _check_capacity(self, room: Room) -> None:
        active = len(room.sip_legs())
        limit = self.config.session_limit
        if active >= limit:
            raise invalid(
                f"max_sip_pstn_sessions_per_room reached: room {room.name} already has "
                f"{active} active SIP/PSTN sessions (limit {limit})"
            )

    # -- dial-out ---------------------------------------------------------------

    def _leg_payload(self, leg: Leg, *, error_msg: str | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"timestamp": self._ts(), "session_id": leg.id}
        if leg.user_id is not None:
            payload["user_id"] = leg.user_id
        payload["domain_id"] = self.domain_id
        payload["room"] = leg.room
        if error_msg is not None:
            payload["error_msg"] = error_msg
            return payload
        payload["destination"] = leg.destination
        payload["origin"] = leg.origin
        if leg.caller_id is not None:
            payload["caller_id"] = leg.caller_id
        return payload

    def _dialin_payload(self, leg: Leg, *, error_msg: str | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "timestamp": self._ts(),
            "session_id": leg.id,
            "domain_id": self.domain_id,
            "room": leg.room,
        }
        if error_msg is not None:
            payload["error_msg"] = error_msg
            return payload
        payload.update(
            {
                "sip_from": leg.sip_from,
                "display_name": leg.user_name,
                "sip_headers": leg.sip_headers,
            }
        )
        return payload

    @staticmethod
    def validate_dialout(body: Any) -> dict[str, Any]:
        """Check a dialOut/start body; returns it plus the parsed `_sip` URI if any."""
        body = check_object("body", body)
        check_keys("", body, DIALOUT_FIELDS)
        has_sip = body.get("sipUri") is not None
        has_phone = body.get("phoneNumber") is not None
        if has_sip == has_phone:
            raise invalid("send exactly one of 'sipUri' or 'phoneNumber'")
        spec = dict(body)
        if has_sip:
            spec["_sip"] = parse_sip_uri(body["sipUri"])
        else:
            check_str("phoneNumber", body["phoneNumber"])
            if not PHONE_RE.match(body["phoneNumber"]):
                raise invalid(
                    f"'phoneNumber' must be E.164 with country code (e.g. +15551234567), "
                    f"got {body['phoneNumber']!r}"
                )
        if body.get("displayName") is not None:
            check_str("displayName", body["displayName"], 200)
        if body.get("userId") is not None:
            check_str("userId", body["userId"], 36)
        if body.get("callerId") is not None:
            check_str("callerId", body["callerId"])
            if not UUID_RE.match(body["callerId"]):
                raise invalid(
                    "'callerId' must be the id (UUID) of a purchased phone number, "
                    f"not the number itself; got {body['callerId']!r}"
                )
        if body.get("extension") is not None:
            check_str("extension", body["extension"])
            if not EXTENSION_RE.match(body["extension"]):
                raise invalid("'extension' must be 1-20 characters from 0-9 * #")
        if body.get("waitBeforeExtensionDialSec") is not None:
            check_int("waitBeforeExtensionDialSec", body["waitBeforeExtensionDialSec"], 0, 60)
        if body.get("video") is not None:
            check_bool("video", body["video"])
            if body["video"] and not has_sip:
                raise invalid("'video' is only supported when dialing a 'sipUri'")
        if body.get("videoSettings") is not None:
            if body.get("video") is not True:
                raise invalid("'videoSettings' requires 'video': true")
            vs = check_object("videoSettings", body["videoSettings"])
            check_keys("videoSettings", vs, set(VIDEO_SETTINGS_LIMITS))
            for key, hi in VIDEO_SETTINGS_LIMITS.items():
                if key in vs:
                    check_int(f"videoSettings.{key}", vs[key], 1, hi)
        if body.get("codecs") is not None:
            check_codecs("codecs", body["codecs"])
        if body.get("permissions") is not None:
            check_object("permissions", body["permissions"])
        return spec

    def start_dialout(self, room_name: str, body: Any) -> Leg:
        """REST dialOut/start: validate, check the room, create a leg and script it."""
        room = self.get_room(room_name)
        spec = self.validate_dialout(body)
        if room.properties.get("enable_dialout") is not True:
            raise ApiError(
                403,
                "forbidden-error",
                f"dial-out is not enabled for room {room.name}: set properties.enable_dialout to true",
            )
        allow_start = (room.properties.get("dialout_config") or {}).get("allow_room_start")
        if room.session is None and allow_start is not True:
            raise not_found(NOT_HOSTING)
        self._check_capacity(room)

        sip: SipUri | None = spec.get("_sip")
        if sip is not None:
            destination = sip.uri
            outcome = outcome_for(sip.user)
            default_name = sip.user or sip.host
            origin = (
                room.sip_endpoints[0]
                if room.sip_endpoints
                else f"sip:{room.name}@{self.config.domain_name}.sip.daily.co"
            )
        else:
            destination = spec["phoneNumber"]
            outcome = DEFAULT_OUTCOME
            default_name = destination
            origin = DEFAULT_PSTN_ORIGIN
        leg = Leg(
            id=str(uuid.uuid4()),
            room=room.name,
            kind="dialout",
            user_id=spec.get("userId"),
            user_name=spec.get("displayName") or default_name,
            joined_at=self.clock.now(),
            destination=destination,
            origin=origin,
            caller_id=spec.get("callerId"),
            outcome=outcome,
            sip_headers=dict(sip.headers) if sip else {},
            video=bool(spec.get("video")),
            codecs=spec.get("codecs"),
        )
        self.legs[leg.id] = leg
        self._join(room, leg)
        leg.timer = self.scheduler.call_later(self.config.connect_delay, lambda: self._dialout_connect(leg))
        return leg

    def _dialout_connect(self, leg: Leg) -> None:
        if not leg.active:
            return
        if leg.outcome in ("busy", "notfound"):
            self._fail_leg(leg, *_FAILURES[leg.outcome])
            return
        leg.state = "ringing"
        leg.sip_code = 180
        leg.connected_at = self.clock.now()
        self.emit("dialout.connected", self._leg_payload(leg), leg)
        if leg.outcome == "noanswer":
            leg.timer = self.scheduler.call_later(
                self.config.ring_timeout, lambda: self._fail_leg(leg, *_FAILURES["noanswer"])
            )
        else:
            leg.timer = self.scheduler.call_later(self.config.answer_delay, lambda: self._dialout_answer(leg))

    def _dialout_answer(self, leg: Leg) -> None:
        if leg.state != "ringing":
            return
        leg.state = "answered"
        leg.sip_code = 200
        leg.answered_at = self.clock.now()
        self.emit("dialout.answered", self._leg_payload(leg), leg)
        if leg.outcome == "hangup":
            leg.timer = self.scheduler.call_later(
                self.config.hangup_after, lambda: self._end_leg(leg, "remote-hangup")
            )

    def _fail_leg(self, leg: Leg, code: int, message: str) -> None:
        if not leg.active:
            return
        leg.state = "failed"
        leg.sip_code = code
        leg.error_msg = message
        leg.end_reason = "error"
        leg.ended_at = self.clock.now()
        leg.timer = None
        if leg.kind == "dialout":
            self.emit("dialout.error", self._leg_payload(leg, error_msg=message), leg)
        else:
            self.emit("dialin.error", self._dialin_payload(leg, error_msg=message), leg)
        room = self.rooms.get(leg.room)
        if room is not None:
            self._leave(room, leg)

    def _end_leg(self, leg: Leg, reason: str) -> None:
        """Stop an active leg (any side hung up) and emit its `*.stopped` event."""
        if not leg.active:
            return
        if leg.timer:
            leg.timer.cancel()
            leg.timer = None
        if leg.state in ("dialing", "ringing") and leg.kind == "dialout":
            leg.sip_code = 487  # the INVITE was cancelled before an answer
        leg.state = "stopped"
        leg.end_reason = reason
        leg.ended_at = self.clock.now()
        if leg.kind == "dialout":
            self.emit("dialout.stopped", self._leg_payload(leg), leg)
        else:
            self.emit("dialin.stopped", self._dialin_payload(leg), leg)
        room = self.rooms.get(leg.room)
        if room is not None:
            self._leave(room, leg)

    def _session_field(self, body: dict[str, Any]) -> str:
        sid = body.get("sessionId")
        if sid is None:
            raise invalid("'sessionId' is required")
        check_str("sessionId", sid)
        return sid

    def _leg_in_room(self, room: Room, session_id: str, kinds: tuple[str, ...]) -> Leg | None:
        leg = self.legs.get(session_id)
        if leg is None or leg.room != room.name or leg.kind not in kinds or not leg.active:
            return None
        return leg

    def stop_dialout(self, room_name: str, body: Any) -> dict[str, Any]:
        """REST dialOut/stop."""
        room = self.get_room(room_name)
        body = check_object("body", body)
        check_keys("", body, {"sessionId"})
        sid = self._session_field(body)
        if room.session is None:
            raise not_found(NOT_HOSTING)
        leg = self._leg_in_room(room, sid, ("dialout",))
        if leg is None:
            raise not_found("No dialout to stop")
        self._end_leg(leg, "api-stop")
        return {"ok": True}

    def send_dtmf(self, room_name: str, body: Any) -> dict[str, Any]:
        """REST dialOut/sendDTMF: recorded on the leg when it is answered."""
        room = self.get_room(room_name)
        body = check_object("body", body)
        check_keys("", body, {"sessionId", "tones", "digitDurationMs"})
        sid = self._session_field(body)
        tones = body.get("tones")
        if tones is None:
            raise invalid("'tones' is required")
        check_str("tones", tones)
        if not TONES_RE.match(tones):
            raise invalid(f"'tones' must be 1-20 characters from 0-9 A-D * #, got {tones!r}")
        duration = body.get("digitDurationMs", 500)
        check_int("digitDurationMs", duration, 50, 2000)
        if room.session is None:
            raise not_found(NOT_HOSTING)
        leg = self._leg_in_room(room, sid, ("dialout", "dialin"))
        if leg is None:
            raise not_found("No session running")
        if leg.state not in ("answered", "connected"):
            raise invalid(
                f"session {sid} has not been answered yet (state {leg.state}); "
                "DTMF can only be sent to an answered call"
            )
        now = self.clock.now()
        leg.dtmf.append({"tones": tones, "digitDurationMs": duration, "at": iso(now), "ts": now})
        return {"ok": True}

    def _transfer_target(self, room_name: str, sid: str) -> Leg:
        room = self.get_room(room_name)
        if room.session is None:
            raise not_found(NOT_HOSTING)
        leg = self._leg_in_room(room, sid, ("dialout", "dialin"))
        if leg is None:
            raise not_found("invalid sessionId")
        if leg.state not in ("answered", "connected"):
            raise invalid(
                f"session {sid} has not been answered yet (state {leg.state}); "
                "only an answered call can be transferred"
            )
        return leg

    def sip_call_transfer(self, room_name: str, body: Any) -> dict[str, Any]:
        """REST sipCallTransfer: recorded on the leg, which stays up."""
        self.get_room(room_name)
        body = check_object("body", body)
        check_keys(
            "",
            body,
            {"sessionId", "toEndPoint", "callerId", "extension", "waitBeforeExtensionDialSec"},
        )
        sid = self._session_field(body)
        if body.get("toEndPoint") is None:
            raise invalid("'toEndPoint' is required")
        _check_endpoint("toEndPoint", body["toEndPoint"])
        if body.get("callerId") is not None:
            check_str("callerId", body["callerId"])
        if body.get("extension") is not None:
            check_str("extension", body["extension"])
            if not EXTENSION_RE.match(body["extension"]):
                raise invalid("'extension' must be 1-20 characters from 0-9 * #")
        wait = body.get("waitBeforeExtensionDialSec", 0)
        check_int("waitBeforeExtensionDialSec", wait, 0, 60)
        leg = self._transfer_target(room_name, sid)
        now = self.clock.now()
        leg.transfers.append(
            {
                "kind": "sipCallTransfer",
                "toEndPoint": body["toEndPoint"],
                "callerId": body.get("callerId"),
                "extension": body.get("extension"),
                "waitBeforeExtensionDialSec": wait,
                "at": iso(now),
            }
        )
        return {"ok": True}

    def sip_refer(self, room_name: str, body: Any) -> dict[str, Any]:
        """REST sipRefer: recorded on the leg, which stays up."""
        self.get_room(room_name)
        body = check_object("body", body)
        check_keys("", body, {"sessionId", "toEndPoint"})
        sid = self._session_field(body)
        if body.get("toEndPoint") is None:
            raise invalid("'toEndPoint' is required")
        _check_endpoint("toEndPoint", body["toEndPoint"])
        leg = self._transfer_target(room_name, sid)
        leg.transfers.append(
            {"kind": "sipRefer", "toEndPoint": body["toEndPoint"], "at": iso(self.clock.now())}
        )
        return {"ok": True}

    # -- presence ---------------------------------------------------------------

    def _presence_rows(self, room: Room) -> list[Participant]:
        return sorted(room.participants.values(), key=lambda p: p.joined_at)

    def room_presence(
        self,
        room_name: str,
        limit: Any = None,
        user_id: str | None = None,
        user_name: str | None = None,
    ) -> dict[str, Any]:
        """REST GET /rooms/:name/presence (camelCase fields)."""
        room = self.get_room(room_name)
        rows = self._presence_rows(room)
        if user_id is not None:
            rows = [p for p in rows if p.user_id == user_id]
        if user_name is not None:
            rows = [p for p in rows if p.user_name == user_name]
        total = len(rows)
        if limit not in (None, ""):
            try:
                n = int(limit)
            except (TypeError, ValueError):
                raise invalid(f"'limit' must be an integer, got {limit!r}") from None
            if n < 1:
                raise invalid("'limit' must be >= 1")
            rows = rows[:n]
        now = self.clock.now()
        data = [
            {
                "id": p.id,
                "room": room.name,
                "userId": p.user_id,
                "userName": p.user_name,
                "mtgSessionId": p.mtg_session_id,
                "joinTime": iso(p.joined_at),
                "duration": int(now - p.joined_at),
            }
            for p in rows
        ]
        return {"total_count": total, "data": data}

    def all_presence(self) -> dict[str, list[dict[str, Any]]]:
        """REST GET /presence: rooms with someone in them, snake_case fields."""
        now = self.clock.now()
        out: dict[str, list[dict[str, Any]]] = {}
        for room in self.rooms.values():
            if not room.participants or self._expired(room):
                continue
            out[room.name] = [
                {
                    "room": room.name,
                    "id": p.id,
                    "user_id": p.user_id,
                    "user_name": p.user_name,
                    "mtg_session_id": p.mtg_session_id,
                    "join_time": iso(p.joined_at),
                    "duration": int(now - p.joined_at),
                }
                for p in self._presence_rows(room)
            ]
        return out

    # -- simulation hooks (the /_emulator routes) -------------------------------

    def simulate_dialin(self, room_name: str, body: Any) -> Leg:
        """A SIP client dials one of the room's endpoints."""
        room = self.get_room(room_name)
        body = check_object("body", body or {})
        check_keys("", body, {"endpoint_index", "from", "display_name", "sip_headers"})
        if room.sip is None or not room.sip_endpoints:
            raise ApiError(409, "invalid-request-error", f"SIP dial-in is not enabled for room {room.name}")
        busy = {leg.endpoint for leg in room.sip_legs() if leg.kind == "dialin"}
        index = body.get("endpoint_index")
        if index is None:
            free = [i for i, ep in enumerate(room.sip_endpoints) if ep not in busy]
            if not free:
                raise ApiError(409, "invalid-request-error", "every SIP endpoint of the room is busy")
            index = free[0]
        check_int("endpoint_index", index, 0, len(room.sip_endpoints) - 1)
        endpoint = room.sip_endpoints[index]
        if endpoint in busy:
            raise ApiError(
                409, "invalid-request-error", f"endpoint {endpoint} already has a caller (486 Busy)"
            )
        allow = (room.sip.get("dialin_config") or {}).get("allow_room_start") is True
        if room.session is None and not allow:
            raise ApiError(
                409,
                "invalid-request-error",
                f"room {room.name} is not hosting a call and sip.dialin_config.allow_room_start "
                "is not true, so the call would wait on hold",
            )
        sip_from = body.get("from") or "sip:+15550001111@pstn.standin.invalid"
        check_str("from", sip_from)
        display = body.get("display_name") or room.sip.get("display_name") or sip_from
        check_str("display_name", display)
        headers = body.get("sip_headers") or {}
        check_object("sip_headers", headers)
        leg = Leg(
            id=str(uuid.uuid4()),
            room=room.name,
            kind="dialin",
            user_id=None,
            user_name=display,
            joined_at=self.clock.now(),
            destination=endpoint,
            state="connected",
            sip_from=sip_from,
            endpoint=endpoint,
            sip_headers={str(k): str(v) for k, v in headers.items()},
            sip_code=200,
        )
        self.legs[leg.id] = leg
        if len(room.sip_legs()) >= self.config.session_limit:
            leg.state = "failed"
            leg.sip_code = 486
            leg.end_reason = "error"
            leg.ended_at = leg.joined_at
            leg.error_msg = "max_sip_pstn_sessions_per_room reached"
            self.emit("dialin.error", self._dialin_payload(leg, error_msg=leg.error_msg), leg)
            return leg
        leg.connected_at = leg.answered_at = self.clock.now()
        self._join(room, leg)
        self.emit("dialin.connected", self._dialin_payload(leg), leg)
        return leg

    def hangup(self, leg_id: str) -> Leg:
        """The far end of a leg hangs up."""
        leg = self.legs.get(leg_id)
        if leg is None:
            raise not_found(f"leg {leg_id} not found")
        if not leg.active:
            raise ApiError(409, "invalid-request-error", f"leg {leg_id} already ended ({leg.state})")
        self._end_leg(leg, "remote-hangup")
        return leg

    def join_web(self, room_name: str, body: Any) -> Participant:
        """A browser participant joins (starts the meeting if it is the first)."""
        room = self.get_room(room_name)
        body = check_object("body", body or {})
        check_keys("", body, {"user_name", "user_id"})
        for key in ("user_name", "user_id"):
            if body.get(key) is not None:
                check_str(key, body[key])
        p = Participant(
            id=str(uuid.uuid4()),
            room=room.name,
            kind="web",
            user_id=body.get("user_id"),
            user_name=body.get("user_name") or "guest",
            joined_at=self.clock.now(),
        )
        self.web_participants[p.id] = p
        self._join(room, p)
        return p

    def leave_web(self, participant_id: str) -> None:
        p = self.web_participants.get(participant_id)
        if p is None:
            raise not_found(f"participant {participant_id} not found")
        room = self.rooms.get(p.room)
        if room is not None:
            self._leave(room, p)
        self.web_participants.pop(participant_id, None)

    # -- introspection ----------------------------------------------------------

    def room_summary(self, room: Room) -> dict[str, Any]:
        legs = room.sip_legs()
        return {
            "name": room.name,
            "id": room.id,
            "expired": self._expired(room),
            "sip_enabled": room.sip is not None,
            "sip_endpoints": list(room.sip_endpoints),
            "enable_dialout": room.properties.get("enable_dialout") is True,
            "allow_room_start": (room.properties.get("dialout_config") or {}).get("allow_room_start") is True,
            "session": None
            if room.session is None
            else {
                "meeting_id": room.session.meeting_id,
                "started_at": iso(room.session.start_ts),
            },
            "participants": len(room.participants),
            "legs_up": len(legs),
            "dialout_legs_up": sum(1 for leg in legs if leg.kind == "dialout"),
            "dialin_legs_up": sum(1 for leg in legs if leg.kind == "dialin"),
            "session_limit": self.config.session_limit,
            "room": self.room_json(room),
        }
