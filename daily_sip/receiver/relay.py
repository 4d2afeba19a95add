"""Relaying Daily's deliveries to the webhook the receiver took over, as Daily would send them.

A Daily domain has one webhook (https://docs.daily.co/reference/rest-api/webhooks). When
``daily-sip setup --take-over-webhook --relay-to-previous`` points it at this receiver, the
application it fed before (recordings, transcripts, meeting events) would get nothing more; with
a relay target the receiver forwards every verified delivery to that application's URL:

* the body exactly as Daily sent it, re-signed with **that endpoint's own secret** in Daily's
  scheme (``X-Webhook-Signature`` = base64 HMAC-SHA256 over ``"<X-Webhook-Timestamp>.<body>"``
  with the base64-decoded secret, `daily_sip.tasks.signature.sign`) and a fresh timestamp
  (unix seconds), so the application's own signature check passes unchanged;
* only the event types that webhook had subscribed to (all of them when it had no list);
* at least once and in order: a delivery is appended and ``fdatasync``-ed to ``relay.journal``
  in the spool directory before Daily gets its 200, and one sender posts the journal's head
  until the application answers 2xx, then the next. A receiver killed with ``kill -9`` and
  restarted on the same directory sends on from where it stopped (the head may arrive twice:
  the application de-duplicates by Daily's event ``id``, as Daily asks every receiver to);
* retries double from 0.5 s to 60 s. Connection errors, timeouts, 408, 429 and 5xx are retried
  without end (the application is down: its events wait on disk); any other 4xx is retried
  `GIVE_UP_AFTER` times and then dropped with an error in the log, as Daily's ``exponential``
  retry drops a message after 5 attempts, so one event the application refuses for good does
  not hold up all that follow.

Daily's verification ping is answered by the receiver and not relayed (the application passed
its own when its webhook was created). The secret is a `pydantic.SecretStr`; only its decoded
key is held, by `RelayTarget`, whose repr hides it.

Example:
    ```python
    target = RelayTarget("https://app.example.com/daily", SecretStr(app_secret))
    relay = Relay(Path("/var/lib/daily-sip/receiver"), target)
    relay.put(event_id, event_type, raw_body)  # durable; answer Daily now
    await relay.run()                          # background: posts everything, in order
    ```
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import time
from collections import OrderedDict, deque
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from daily_sip.tasks.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, decode_secret, sign

from .emitter import describe
from .spool import SpoolBusyError

if TYPE_CHECKING:
    import httpx
    from pydantic import SecretStr

logger = logging.getLogger("daily_sip.receiver")

JOURNAL = "relay.journal"
RELAY_SECRET_ENVVAR = "DAILY_RELAY_SECRET"
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 60.0
# Attempts at a delivery the application refuses with a 4xx other than 408/429 before it is dropped.
GIVE_UP_AFTER = 5
COMPACT_BYTES = 8 * 1024 * 1024
# Daily event ids remembered after sending, so a redelivery by Daily is not relayed twice.
RECENT_IDS = 10_000


def shown_url(url: str) -> str:
    """A URL safe to log or print: scheme, host and path; no credentials, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def fingerprint(url: str) -> str:
    """A short digest of a relay URL: ``/healthz`` shows it instead of the URL (which may carry a token)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


class RelayTarget:
    """Where to relay and the key to sign with (held decoded; never shown).

    ``event_types``: relay only these Daily event types; None relays every type.
    Raises ValueError for a URL that is not http(s) or a secret that is not base64.
    """

    __slots__ = ("_basic_auth", "_key", "event_types", "url")

    def __init__(
        self,
        url: str,
        secret: SecretStr,
        event_types: list[str] | None = None,
        basic_auth: SecretStr | None = None,
    ) -> None:
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise ValueError("the relay URL must be an http(s) URL (--relay-to)")
        try:
            self._key = decode_secret(secret)
        except ValueError as exc:
            raise ValueError(f"relay secret ({RELAY_SECRET_ENVVAR}): {exc}") from None
        self.url = url
        self.event_types = frozenset(event_types) if event_types else None
        self._basic_auth = basic_auth  # Daily sends it as ``Authorization: Basic <value>``

    def __repr__(self) -> str:
        return f"<RelayTarget url={shown_url(self.url)!r} secret=********** types={self.event_types}>"

    __str__ = __repr__

    def __reduce__(self):  # never pickle the key
        raise TypeError("the relay target cannot be pickled")

    def wants(self, event_type: str) -> bool:
        return self.event_types is None or event_type in self.event_types

    def headers(self, body: bytes, now: float) -> dict[str, str]:
        """Daily's delivery headers for ``body``, signed with this target's secret."""
        timestamp = str(int(now))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._key, timestamp, body),
        }
        if self._basic_auth is not None:
            headers["Authorization"] = f"Basic {self._basic_auth.get_secret_value()}"
        return headers


class Relay:
    """The relay's durable queue (``relay.journal`` in ``directory``) and its one sender.

    Journal lines: ``E <json {"id", "body"}>`` when a delivery is taken (body base64), ``D <id>``
    when the application took it. Emptied whenever nothing is pending, rewritten with only the
    pending deliveries when it grows large. One receiver at a time per directory (a lock).
    """

    def __init__(self, directory: Path, target: RelayTarget, *, timeout: float = 10.0) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / JOURNAL
        self.target = target
        self.timeout = timeout
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise SpoolBusyError(f"relay journal {self.path} is in use by another receiver") from None
        self._pending: deque[tuple[str, bytes]] = deque()
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._wake = asyncio.Event()
        self._empty = asyncio.Event()
        self.stats = {"queued": 0, "relayed": 0, "attempt_failures": 0, "dropped": 0, "skipped_types": 0}
        self.recovered = self._replay()

    def __repr__(self) -> str:
        return f"Relay({self.target!r}, pending={len(self._pending)})"

    @property
    def pending(self) -> int:
        return len(self._pending)

    def health(self) -> dict[str, Any]:
        return {
            **self.stats,
            "pending": self.pending,
            "recovered": self.recovered,
            "target": fingerprint(self.target.url),
        }

    def _replay(self) -> int:
        taken: dict[str, bytes] = {}
        for line in self.path.read_bytes().splitlines():
            kind, _, rest = line.partition(b" ")
            try:
                if kind == b"E":
                    item = json.loads(rest)
                    taken[str(item["id"])] = base64.b64decode(item["body"], validate=True)
                elif kind == b"D":
                    taken.pop(rest.decode(), None)
            except (ValueError, KeyError, TypeError):  # torn by a crash mid-write: never acknowledged
                continue
        self._pending.extend(taken.items())
        for key in taken:
            self._remember(key)
        if not self._pending:
            self._empty.set()
        self._rewrite()
        if taken:
            logger.info("relay: %d delivery(ies) taken before a restart are relayed now", len(taken))
        return len(taken)

    def _remember(self, key: str) -> None:
        self._recent[key] = None
        self._recent.move_to_end(key)
        while len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)

    def _append(self, data: bytes) -> None:
        os.write(self._fd, data)
        os.fdatasync(self._fd)

    @staticmethod
    def _line(key: str, body: bytes) -> bytes:
        return b"E " + json.dumps({"id": key, "body": base64.b64encode(body).decode()}).encode() + b"\n"

    def _rewrite(self) -> None:
        tmp = self.directory / (JOURNAL + ".new")
        with open(tmp, "wb") as out:
            for key, body in self._pending:
                out.write(self._line(key, body))
            out.flush()
            os.fdatasync(out.fileno())
        fd = os.open(tmp, os.O_RDWR | os.O_APPEND)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(tmp, self.path)
        os.close(self._fd)
        self._fd = fd

    def put(self, key: str, event_type: str, body: bytes) -> bool:
        """Queue one verified delivery durably (raises OSError if it could not be synced).

        False when it is not relayed: a type the target did not subscribe to, or an id already
        queued or sent (Daily redelivers when an answer was lost).
        """
        if not self.target.wants(event_type):
            self.stats["skipped_types"] += 1
            return False
        if key in self._recent:
            return False
        self._append(self._line(key, body))
        self._pending.append((key, body))
        self._remember(key)
        self.stats["queued"] += 1
        self._empty.clear()
        self._wake.set()
        return True

    def _done(self, key: str) -> None:
        self._pending.popleft()
        if not self._pending:
            os.ftruncate(self._fd, 0)  # nothing pending: the journal starts over
            self._empty.set()
        elif os.fstat(self._fd).st_size > COMPACT_BYTES:
            self._rewrite()
        else:
            self._append(b"D " + key.encode() + b"\n")

    async def run(self) -> None:
        """Post pending deliveries in order, one at a time, each until the application takes it."""
        import httpx

        async with httpx.AsyncClient(timeout=self.timeout, trust_env=False) as http:
            while True:
                if not self._pending:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                key, body = self._pending[0]
                if await self._deliver(http, key, body):
                    self.stats["relayed"] += 1
                else:
                    self.stats["dropped"] += 1
                try:
                    self._done(key)
                except OSError as exc:  # at worst it is sent again after a restart (at least once)
                    logger.error("relay: journal %s not updated: %s", self.path, describe(exc, 200))

    async def _deliver(self, http: httpx.AsyncClient, key: str, body: bytes) -> bool:
        """True once a 2xx came back; False when the application refused it for good."""
        pause = RETRY_FIRST_SECONDS
        refusals = 0
        failures = 0
        while True:
            try:
                answer = await http.post(
                    self.target.url, content=body, headers=self.target.headers(body, time.time())
                )
                problem = None if answer.is_success else f"HTTP {answer.status_code}"
                permanent = 400 <= answer.status_code < 500 and answer.status_code not in (408, 429)
            except Exception as exc:  # httpx.HTTPError and anything else: the sender must live on
                problem, permanent = describe(exc, 200), False
            if problem is None:
                if failures:
                    logger.warning("relay: %s takes deliveries again", shown_url(self.target.url))
                return True
            failures += 1
            self.stats["attempt_failures"] += 1
            if permanent:
                refusals += 1
                if refusals >= GIVE_UP_AFTER:
                    logger.error(
                        "relay: %s refused Daily event %s %d times (%s); dropped",
                        shown_url(self.target.url),
                        key,
                        refusals,
                        problem,
                    )
                    return False
            if failures == 1:
                logger.warning(
                    "relay: %s did not take Daily event %s (%s); retrying, %d pending",
                    shown_url(self.target.url),
                    key,
                    problem,
                    len(self._pending),
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, RETRY_MAX_SECONDS)

    async def drained(self) -> None:
        """Returns once nothing is pending."""
        await self._empty.wait()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def load_relay_block(name: str) -> RelayTarget:
    """The relay target in the Prefect Secret block ``daily-sip setup`` saved.

    Raises ValueError naming the block and the fix when it is missing or malformed.
    """
    from prefect.blocks.system import Secret
    from pydantic import SecretStr

    try:
        value = Secret.load(name).get()  # type: ignore[union-attr]
    except ValueError:
        raise ValueError(
            f"no Prefect Secret block {name!r}: `daily-sip setup --take-over-webhook --relay-to-previous` "
            "saves it"
        ) from None
    if not isinstance(value, dict) or not value.get("url") or not value.get("hmac"):
        raise ValueError(f"Prefect Secret block {name!r} is not a relay target (needs url and hmac)")
    types = value.get("eventTypes") or None
    basic = value.get("basicAuth")
    return RelayTarget(
        str(value["url"]),
        SecretStr(str(value["hmac"])),
        list(types) if types else None,
        SecretStr(str(basic)) if basic else None,
    )
