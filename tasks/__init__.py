"""Prefect tasks for Daily's SIP dial-in / dial-out REST API.

One task per Daily operation, by area: ``tasks.rooms``, ``tasks.sip``, ``tasks.dialout``,
``tasks.transfers``, ``tasks.webhooks``, ``tasks.presence``. The plain async client is
``tasks.client.DailyClient``; the models are in ``tasks.models``.

This is also the lowest layer: Daily's shared vocabulary lives here once, and the webhook
receiver, the pacer and the flows import it from here (nothing here imports them):

* ``tasks.signature``: Daily's webhook HMAC signature (sign, verify, the proof a relayed event
  carries);
* ``tasks.events``: Daily's webhook event types, the Prefect event names and resource ids the
  receiver emits them under;
* ``tasks.window``: the permit book, Daily's sliding-window rate limit as arithmetic;
* ``tasks.retries``: the one retry helper and the policies built on it.

The names below are loaded on first use, so a process that only needs the vocabulary (the
pacer, the receiver, the stand-in) does not import Prefect with them. ``DailyCredentials`` is
registered as a Prefect Block when its module is imported: by this package on first use, or by
Prefect itself through the ``prefect.collections`` entry point (so Prefect finds it by slug in
any process).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import DEFAULT_API_URL, DailyClient
    from .credentials import DailyCredentials
    from .errors import (
        DailyAPIError,
        DailyAuthError,
        DailyError,
        DailyForbiddenError,
        DailyKeyError,
        DailyNotFoundError,
        DailyRateLimitError,
        DailyRequestError,
        DailyServerError,
        DailyTransportError,
    )

__all__ = [
    "DEFAULT_API_URL",
    "DailyAPIError",
    "DailyAuthError",
    "DailyClient",
    "DailyCredentials",
    "DailyError",
    "DailyForbiddenError",
    "DailyKeyError",
    "DailyNotFoundError",
    "DailyRateLimitError",
    "DailyRequestError",
    "DailyServerError",
    "DailyTransportError",
]

_HOMES = {
    "DEFAULT_API_URL": ".client",
    "DailyClient": ".client",
    "DailyCredentials": ".credentials",
    **{name: ".errors" for name in __all__ if name.startswith("Daily") and name.endswith("Error")},
}


def __getattr__(name: str) -> Any:
    # Loaded on first use (as `daily_sip.standin` does): importing `daily_sip.tasks.signature`
    # in the receiver must not cost it Prefect, the client and the Block (~1 s and 50 MB).
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value
