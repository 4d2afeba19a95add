"""What every task needs: credentials (Block or environment) and a pooled client per event loop."""

from __future__ import annotations

import asyncio
import hashlib
import weakref

from .client import DailyClient
from .credentials import DailyCredentials

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple, DailyClient]] = (
    weakref.WeakKeyDictionary()
)


def resolve_credentials(credentials: DailyCredentials | None) -> DailyCredentials:
    return credentials if credentials is not None else DailyCredentials.from_env()


def client_for(credentials: DailyCredentials | None) -> DailyClient:
    """One pooled client per (event loop, API URL, key), so consecutive tasks reuse connections."""
    creds = resolve_credentials(credentials)
    fingerprint = hashlib.sha256(creds.api_key.get_secret_value().encode()).hexdigest()
    key = (creds.api_url, fingerprint, creds.timeout_seconds)
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    client = per_loop.get(key)
    if client is None or client.closed:
        client = per_loop[key] = creds.get_client()
    return client
