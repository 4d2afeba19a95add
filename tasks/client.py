"""Async client for the Daily REST API subset this library needs. No Prefect in here.

One method per Daily operation. Requests are validated by the models in ``tasks.models``
before anything is sent; failures become the typed errors of ``tasks.errors``.

Example:
    >>> import asyncio
    >>> async def main():
    ...     async with DailyClient("my-key", "http://127.0.0.1:8787/v1") as daily:
    ...         room = await daily.create_room(properties={"enable_dialout": True})
    ...         return room.name
"""

from __future__ import annotations

import email.utils
import functools
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, SecretStr

from .errors import DailyError, DailyKeyError, DailyNotFoundError, DailyTransportError, api_error_for
from .models import (
    Acknowledged,
    CreateRoom,
    DeletedRoom,
    DialOutStarted,
    Participant,
    Room,
    RoomList,
    RoomPresence,
    RoomProperties,
    SendDtmf,
    SipCallTransfer,
    SipRefer,
    SipSettings,
    StartDialOut,
    StopDialOut,
    UpdateRoom,
    Webhook,
    WebhookSettings,
)

DEFAULT_API_URL = "https://api.daily.co/v1"
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
MAX_PAGE_SIZE = 100  # Daily answers at most 100 rooms per GET /rooms, whatever `limit` says

M = TypeVar("M", bound=BaseModel)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle costs more than a request."""
    return httpx.create_ssl_context()


def _coerce(model: type[M], value: M | dict[str, Any]) -> M:
    return value if isinstance(value, model) else model.model_validate(value)


def _path(*parts: str) -> str:
    return "/" + "/".join(quote(p, safe="") for p in parts)


def check_api_key(key: SecretStr | str) -> SecretStr:
    """Refuse a key Daily could never accept, naming the problem but never the key.

    Daily keys are printable ASCII without spaces (they travel in an HTTP header,
    https://docs.daily.co/reference/rest-api). A copy-pasted key often carries a trailing
    newline or no-break space; sent as is, the HTTP layer fails with an error whose text
    repeats the header, i.e. the key.

    Example:
        >>> check_api_key("abc123").get_secret_value()
        'abc123'
        ``check_api_key("abc123\\u00a0")`` raises `DailyKeyError`: "the Daily API key has a
        non-ASCII character (U+00A0) at position 7 of 7 ...", without the key.
    """
    value = key.get_secret_value() if isinstance(key, SecretStr) else key
    if not isinstance(value, str) or not value:
        raise DailyKeyError("the Daily API key is empty; copy it from the Daily dashboard (Developers)")
    for position, ch in enumerate(value, 1):
        if ch.isspace() or not ch.isascii() or not ch.isprintable():
            what = (
                f"a non-ASCII character (U+{ord(ch):04X})"
                if not ch.isascii()
                else "a space, tab or newline"
                if ch.isspace()
                else "a control character"
            )
            raise DailyKeyError(
                f"the Daily API key has {what} at position {position} of {len(value)}, which no "
                "Daily key contains (often left over from copy-paste); paste the key again"
            )
    return key if isinstance(key, SecretStr) else SecretStr(value)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):  # neither seconds nor an HTTP date: ignore it
            return None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


class DailyClient:
    """Pooled ``httpx.AsyncClient`` wrapper. Use as ``async with``, or call :meth:`aclose`."""

    def __init__(
        self,
        api_key: SecretStr | str,
        api_url: str = DEFAULT_API_URL,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        max_connections: int = 20,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._api_key = check_api_key(api_key)  # before anything can be sent
        self.api_url = api_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.api_url,
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
            verify=_ssl_context(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )

    def __repr__(self) -> str:
        return f"DailyClient(api_url={self.api_url!r}, api_key=SecretStr('**********'))"

    async def __aenter__(self) -> DailyClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def closed(self) -> bool:
        return self._http.is_closed

    async def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        """Send one request; return the decoded JSON body (``{}`` for an empty one)."""
        headers = {"Authorization": f"Bearer {self._api_key.get_secret_value()}"}
        if params:
            params = {k: v for k, v in params.items() if v is not None}
        try:
            response = await self._http.request(method, path, json=json, params=params, headers=headers)
        except httpx.LocalProtocolError as exc:
            # Never sent (e.g. an empty key or one with a newline); h11's message repeats the
            # offending header, which is the Authorization header, so it is not passed on.
            raise DailyError(
                f"{method} {path}: request could not be sent ({type(exc).__name__}: a header value "
                "is invalid; check the API key for an empty value, spaces or a newline)"
            ) from None
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise DailyTransportError(
                f"{type(exc).__name__}: {exc}", method=method, path=path, maybe_applied=False
            ) from None
        except httpx.TransportError as exc:
            raise DailyTransportError(
                f"{type(exc).__name__}: {exc}", method=method, path=path, maybe_applied=True
            ) from None
        body: Any
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = {"info": response.text[:500]}
        if response.is_success:
            return body
        error = body.get("error") if isinstance(body, dict) else None
        info = body.get("info") if isinstance(body, dict) else None
        raise api_error_for(
            response.status_code,
            error,
            info if info is not None else (None if isinstance(body, dict) else str(body)[:500]),
            method=method,
            path=path,
            retry_after=_retry_after(response),
        )

    # -- domain --------------------------------------------------------------------------------

    async def get_domain_config(self) -> dict[str, Any]:
        """``GET /``: ``{"domain_name", "domain_id", "config": {...}}``, the domain's settings
        (https://docs.daily.co/reference/rest-api/your-domain/get-domain-config)."""
        data = await self.request("GET", "/")
        return data if isinstance(data, dict) else {"config": data}

    # -- rooms ---------------------------------------------------------------------------------

    async def create_room(
        self,
        name: str | None = None,
        *,
        privacy: str | None = None,
        properties: RoomProperties | dict[str, Any] | None = None,
    ) -> Room:
        """``POST /rooms``. Without a name Daily picks a random one."""
        spec: dict[str, Any] = {}
        if name is not None:
            spec["name"] = name
        if privacy is not None:
            spec["privacy"] = privacy
        if properties is not None:
            spec["properties"] = _coerce(RoomProperties, properties)
        body = CreateRoom.model_validate(spec).to_body()
        return Room.model_validate(await self.request("POST", "/rooms", json=body))

    async def get_room(self, name: str) -> Room:
        """``GET /rooms/:name``."""
        return Room.model_validate(await self.request("GET", _path("rooms", name)))

    async def update_room(
        self,
        name: str,
        *,
        properties: RoomProperties | dict[str, Any] | None = None,
        privacy: str | None = None,
    ) -> Room:
        """``POST /rooms/:name``: change privacy and/or properties."""
        spec: dict[str, Any] = {}
        if privacy is not None:
            spec["privacy"] = privacy
        if properties is not None:
            spec["properties"] = _coerce(RoomProperties, properties)
        body = UpdateRoom.model_validate(spec).to_body()
        return Room.model_validate(await self.request("POST", _path("rooms", name), json=body))

    async def delete_room(self, name: str) -> DeletedRoom:
        """``DELETE /rooms/:name``. A room that is already gone is not an error."""
        try:
            return DeletedRoom.model_validate(await self.request("DELETE", _path("rooms", name)))
        except DailyNotFoundError:
            return DeletedRoom(deleted=True, name=name, already_gone=True)

    async def list_rooms(
        self,
        *,
        limit: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> RoomList:
        """``GET /rooms``: one page, newest first (at most 100)."""
        params = {"limit": limit, "starting_after": starting_after, "ending_before": ending_before}
        return RoomList.model_validate(await self.request("GET", "/rooms", params=params))

    async def iter_rooms(self, *, page_size: int = 100) -> AsyncIterator[Room]:
        """Every room of the domain, following ``starting_after`` cursors page by page."""
        page_size = min(page_size, MAX_PAGE_SIZE)  # else a full page of 100 looks like the last one
        cursor: str | None = None
        while True:
            page = await self.list_rooms(limit=page_size, starting_after=cursor)
            for room in page.data:
                yield room
            if len(page.data) < page_size or not page.data:
                return
            cursor = page.data[-1].id

    # -- SIP dial-in ---------------------------------------------------------------------------

    async def enable_sip(self, name: str, sip: SipSettings | dict[str, Any], **more_properties: Any) -> Room:
        """Turn SIP dial-in on (``properties.sip``); extra properties go in the same update."""
        props = RoomProperties.model_validate({**more_properties, "sip": _coerce(SipSettings, sip)})
        return await self.update_room(name, properties=props)

    async def disable_sip(self, name: str) -> Room:
        """Turn SIP dial-in off: ``{"properties": {"sip": null}}``."""
        return await self.update_room(name, properties=RoomProperties(sip=None))

    # -- dial-out ------------------------------------------------------------------------------

    async def start_dial_out(self, room: str, dial_out: StartDialOut | dict[str, Any]) -> DialOutStarted:
        """``POST /rooms/:name/dialOut/start``; returns the ``sessionId`` to stop it or send DTMF."""
        body = _coerce(StartDialOut, dial_out).to_body()
        data = await self.request("POST", _path("rooms", room, "dialOut", "start"), json=body)
        return DialOutStarted.model_validate(data)

    async def stop_dial_out(self, room: str, session_id: str) -> Acknowledged:
        """``POST /rooms/:name/dialOut/stop``."""
        body = StopDialOut(session_id=session_id).to_body()
        data = await self.request("POST", _path("rooms", room, "dialOut", "stop"), json=body)
        return Acknowledged.model_validate(data or {})

    async def send_dtmf(self, room: str, dtmf: SendDtmf | dict[str, Any]) -> Acknowledged:
        """``POST /rooms/:name/dialOut/sendDTMF``."""
        body = _coerce(SendDtmf, dtmf).to_body()
        data = await self.request("POST", _path("rooms", room, "dialOut", "sendDTMF"), json=body)
        return Acknowledged.model_validate(data or {})

    # -- transfers -----------------------------------------------------------------------------

    async def sip_call_transfer(self, room: str, transfer: SipCallTransfer | dict[str, Any]) -> Acknowledged:
        """``POST /rooms/:name/sipCallTransfer``."""
        body = _coerce(SipCallTransfer, transfer).to_body()
        data = await self.request("POST", _path("rooms", room, "sipCallTransfer"), json=body)
        return Acknowledged.model_validate(data or {})

    async def sip_refer(self, room: str, refer: SipRefer | dict[str, Any]) -> Acknowledged:
        """``POST /rooms/:name/sipRefer``."""
        body = _coerce(SipRefer, refer).to_body()
        data = await self.request("POST", _path("rooms", room, "sipRefer"), json=body)
        return Acknowledged.model_validate(data or {})

    # -- webhooks ------------------------------------------------------------------------------

    async def create_webhook(self, settings: WebhookSettings | dict[str, Any]) -> Webhook:
        """``POST /webhooks``. Daily first pings the URL and fails the call unless it answers 200."""
        body = _coerce(WebhookSettings, settings).to_body()
        return Webhook.model_validate(await self.request("POST", "/webhooks", json=body))

    async def list_webhooks(self) -> list[Webhook]:
        """``GET /webhooks`` (a domain has at most one)."""
        data = await self.request("GET", "/webhooks")
        items = data.get("data", []) if isinstance(data, dict) else data
        return [Webhook.model_validate(w) for w in items]

    async def get_webhook(self, uuid: str) -> Webhook:
        """``GET /webhooks/:uuid``."""
        return Webhook.model_validate(await self.request("GET", _path("webhooks", uuid)))

    async def update_webhook(self, uuid: str, settings: WebhookSettings | dict[str, Any]) -> Webhook:
        """``POST /webhooks/:uuid``; also the way to re-activate a FAILED webhook."""
        body = _coerce(WebhookSettings, settings).to_body()
        return Webhook.model_validate(await self.request("POST", _path("webhooks", uuid), json=body))

    async def delete_webhook(self, uuid: str) -> bool:
        """``DELETE /webhooks/:uuid``. Returns False when it was already gone."""
        try:
            await self.request("DELETE", _path("webhooks", uuid))
        except DailyNotFoundError:
            return False
        return True

    # -- presence ------------------------------------------------------------------------------

    async def get_room_presence(
        self,
        room: str,
        *,
        limit: int | None = None,
        user_id: str | None = None,
        user_name: str | None = None,
    ) -> RoomPresence:
        """``GET /rooms/:name/presence``: who is in the room now, dial-out legs included."""
        params = {"limit": limit, "userId": user_id, "userName": user_name}
        data = await self.request("GET", _path("rooms", room, "presence"), params=params)
        return RoomPresence.model_validate(data)

    async def get_presence(self) -> dict[str, list[Participant]]:
        """``GET /presence``: every room with people in it, keyed by room name."""
        data = await self.request("GET", "/presence")
        return {room: [Participant.model_validate(p) for p in people] for room, people in data.items()}
