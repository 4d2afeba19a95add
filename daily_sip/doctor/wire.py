"""What went over the wire during a doctor run: every Daily answer's status and headers.

The doctor judges rate-limit headroom from what Daily itself said (429s, any ``*RateLimit*`` or
``Retry-After`` header), and a fingerprint records the shape of Daily's answers; both need the raw
responses that `DailyClient` turns into models. A transport that wraps httpx's own sees them
without touching the client.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx

from daily_sip.tasks.client import DailyClient


@dataclass
class Exchange:
    """One request and its answer (never the Authorization header)."""

    method: str
    path: str
    status: int
    headers: dict[str, str]
    at: float


@dataclass
class WireLog:
    exchanges: list[Exchange] = field(default_factory=list)

    def rate_headers(self) -> dict[str, str]:
        """The last value of every rate-limit related header Daily sent."""
        seen: dict[str, str] = {}
        for ex in self.exchanges:
            for name, value in ex.headers.items():
                if "ratelimit" in name.replace("-", "").lower() or name.lower() == "retry-after":
                    seen[name] = value
        return seen

    def count(self, status: int) -> int:
        return sum(1 for ex in self.exchanges if ex.status == status)


class RecordingTransport(httpx.AsyncBaseTransport):
    """httpx's transport, with each answer's status and headers written to a `WireLog`."""

    def __init__(self, log: WireLog) -> None:
        self.log = log
        self._inner = httpx.AsyncHTTPTransport()  # verifies TLS with httpx's default CA bundle

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        self.log.exchanges.append(
            Exchange(
                method=request.method,
                path=request.url.path,
                status=response.status_code,
                headers={k.lower(): v for k, v in response.headers.items()},
                at=time.monotonic(),
            )
        )
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def recording_client(api_key, api_url: str, log: WireLog, timeout: float = 15.0) -> DailyClient:
    """A `DailyClient` whose answers are logged to ``log``."""
    return DailyClient(api_key, api_url, timeout=timeout, transport=RecordingTransport(log))
