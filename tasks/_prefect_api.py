"""Plain HTTP to the configured Prefect API, with Prefect's own auth, TLS and header settings.

Used where Prefect's client adds delay we cannot afford: its 503 retry waits ~2 s, and a
SQLite-backed server answers 503 whenever its database is briefly locked.
"""

from __future__ import annotations

import base64
import ssl
from typing import Any


def prefect_api_connection(user_agent: str = "daily-sip-flows") -> tuple[str, dict[str, str], Any]:
    """(api_url, headers, verify) from the current Prefect settings; raises if no API URL is set."""
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
