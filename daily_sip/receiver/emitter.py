"""Handing a verified Daily event to Prefect with an acknowledged write.

``POST {PREFECT_API_URL}/events`` answers only after the server validated the event and put it on
its event bus, which is stronger than `prefect.events.emit_event` (a buffered websocket that
confirms at checkpoints). Re-sending is safe: the Prefect event id is derived from Daily's.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx
    from prefect.events import Event


class EmitError(RuntimeError):
    """The event could not be handed to Prefect durably; the delivery must be retried."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code

    @property
    def refused(self) -> bool:
        """Prefect refused the content (413 too large, 422 invalid): resending it will not help.

        Auth or URL problems (401, 403, 404) are not: they are fixed by configuration, and the
        events must still be there then.
        """
        return self.status_code in (413, 422)


def describe(exc: BaseException, limit: int = 300) -> str:
    """An exception as one short log line: its type and the first line of its text."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:limit]


def prefect_api_connection(user_agent: str = "daily-sip-receiver") -> tuple[str, dict[str, str], Any]:
    """(api_url, headers, verify) from the current Prefect settings; raises if no API URL is set.

    The receiver speaks to ``POST /events`` itself (see the module docstring), so it applies
    Prefect's auth, TLS and custom-header settings the way Prefect's own client does.
    """
    from prefect.client.constants import SERVER_API_VERSION
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    api_url = settings.api.url
    if not api_url:
        raise RuntimeError(
            "PREFECT_API_URL is not set: a running Prefect server is needed "
            "(e.g. http://127.0.0.1:4200/api); ephemeral mode cannot share state between processes"
        )
    headers = {"X-PREFECT-API-VERSION": SERVER_API_VERSION, "User-Agent": user_agent}
    for name, value in (settings.client.custom_headers or {}).items():
        if name.lower() not in {"user-agent", "prefect-csrf-token", "prefect-csrf-client"}:
            headers[name] = str(value)
    if settings.api.auth_string:
        token = base64.b64encode(settings.api.auth_string.get_secret_value().encode())
        headers["Authorization"] = f"Basic {token.decode()}"
    elif settings.api.key:
        headers["Authorization"] = f"Bearer {settings.api.key.get_secret_value()}"
    verify: Any = True
    if settings.api.tls_insecure_skip_verify:
        verify = False
    elif settings.api.ssl_cert_file:
        verify = ssl.create_default_context(cafile=settings.api.ssl_cert_file)
    return api_url.rstrip("/"), headers, verify


class PrefectEventsEmitter:
    """Acknowledged write of one event: ``POST {api_url}/events`` with a one-element batch.

    Success only on a 2xx answer. Connection errors, timeouts and other statuses raise
    `EmitError`. One immediate re-send on a broken keep-alive connection (idempotent: same
    event id). Honours PREFECT_API_KEY / PREFECT_API_AUTH_STRING, TLS settings, custom client
    headers and, when the server has it enabled, Prefect's CSRF token protocol.
    """

    def __init__(
        self, api_url: str, *, headers: dict[str, str] | None = None, verify: Any = True, timeout: float = 5.0
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self._headers = dict(headers or {})
        self._verify = verify
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._csrf_client = str(uuid.uuid4())
        self._csrf_token: str | None = None

    def __repr__(self) -> str:  # headers may carry the API key: never shown
        return f"PrefectEventsEmitter(api_url={self.api_url!r})"

    @classmethod
    def from_settings(cls, *, timeout: float = 5.0) -> PrefectEventsEmitter:
        api_url, headers, verify = prefect_api_connection("daily-sip-receiver")
        return cls(api_url, headers=headers, verify=verify, timeout=timeout)

    def _get_client(self) -> httpx.AsyncClient:
        import httpx

        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(
                headers=self._headers,
                verify=self._verify,
                timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 3.0)),
                limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            )
            self._loop = loop
        return self._client

    async def _fetch_csrf_token(self, client: httpx.AsyncClient) -> None:
        response = await client.get(f"{self.api_url}/csrf-token", params={"client": self._csrf_client})
        response.raise_for_status()
        self._csrf_token = response.json()["token"]

    async def __call__(self, event: Event) -> None:
        await self.emit_many([event])

    async def emit_many(self, events: Sequence[Event]) -> None:
        """All of ``events`` in one ``POST /events`` (the endpoint takes a list), acknowledged."""
        import httpx

        client = self._get_client()
        body = [event.model_dump(mode="json") for event in events]
        url = f"{self.api_url}/events"
        # Not a retry with backoff (the spool retries): one immediate resend, after a keep-alive
        # connection the server had closed or after fetching a CSRF token.
        for attempt in (1, 2):
            headers = (
                {"Prefect-Csrf-Token": self._csrf_token, "Prefect-Csrf-Client": self._csrf_client}
                if self._csrf_token
                else None
            )
            try:
                response = await client.post(url, json=body, headers=headers)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                if attempt == 1:  # typically a keep-alive connection the server had closed
                    continue
                raise EmitError(f"Prefect API connection failed: {type(exc).__name__}") from exc
            except httpx.HTTPError as exc:
                raise EmitError(f"Prefect API unreachable: {type(exc).__name__}") from exc
            if response.is_success:
                return
            if response.status_code == 403 and attempt == 1 and "csrf" in response.text.lower():
                try:
                    await self._fetch_csrf_token(client)
                except (httpx.HTTPError, KeyError, ValueError) as exc:
                    raise EmitError("Prefect API CSRF token request failed") from exc
                continue
            raise EmitError(
                f"Prefect API answered {response.status_code} to POST /events", response.status_code
            )
        raise EmitError("Prefect API did not accept the event")  # pragma: no cover

    async def check(self) -> bool:
        """GET {api_url}/health: warms the connection pool; never raises."""
        try:
            response = await self._get_client().get(f"{self.api_url}/health")
        except Exception:
            return False
        return response.is_success

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            try:
                await client.aclose()
            except RuntimeError:  # created on a loop that is gone
                pass
