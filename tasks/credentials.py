"""The one credentials Block of this library."""

from __future__ import annotations

import os

from prefect.blocks.abstract import CredentialsBlock
from pydantic import Field, HttpUrl, SecretStr

from .client import DEFAULT_API_URL, DailyClient


class DailyCredentials(CredentialsBlock):
    """Daily API key, API URL and webhook HMAC secret.

    Point ``api_url`` at the offline stand-in (``http://127.0.0.1:8787/v1``) to try things
    without Daily; leave the default for the real API. Nothing else changes.

    Example:
        Load a saved block (``daily-sip setup`` saves one named ``daily``; in async code use
        ``await DailyCredentials.aload("BLOCK_NAME")``):
        ```python
        from daily_sip.tasks import DailyCredentials

        daily_credentials_block = DailyCredentials.load("BLOCK_NAME")
        client = daily_credentials_block.get_client()  # async: `async with client: ...`
        ```
    """

    _block_type_name = "Daily Credentials"
    _block_type_slug = "daily-credentials"
    _logo_url = HttpUrl("https://avatars.githubusercontent.com/u/28955428?s=200")
    _documentation_url = HttpUrl("https://docs.daily.co/reference/rest-api")
    _description = "API key (and webhook secret) for Daily's REST API, or for the offline stand-in."

    api_key: SecretStr = Field(description="Daily API key (Dashboard > Developers).")
    api_url: str = Field(
        default=DEFAULT_API_URL,
        description="Base URL of the REST API. The offline stand-in is http://127.0.0.1:8787/v1.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Base64 HMAC secret for Daily webhooks; the receiver verifies signatures with it.",
    )
    timeout_seconds: float = Field(default=15.0, gt=0, description="Per-request timeout.")

    def get_client(self) -> DailyClient:
        """A new pooled client; close it with ``async with`` or ``await client.aclose()``."""
        return DailyClient(self.api_key, self.api_url, timeout=self.timeout_seconds)

    @classmethod
    def from_env(cls) -> DailyCredentials:
        """Build from ``DAILY_API_KEY``, ``DAILY_API_URL`` and ``DAILY_WEBHOOK_SECRET`` (for scripts)."""
        key = os.environ.get("DAILY_API_KEY")
        if not key:
            raise ValueError(
                "No Daily credentials: pass a DailyCredentials block (e.g. DailyCredentials.load('daily'))"
                " or set DAILY_API_KEY (and DAILY_API_URL for the stand-in)."
            )
        secret = os.environ.get("DAILY_WEBHOOK_SECRET")
        return cls(
            api_key=SecretStr(key),
            api_url=os.environ.get("DAILY_API_URL") or DEFAULT_API_URL,
            webhook_secret=SecretStr(secret) if secret else None,
        )
