"""Prefect tasks for Daily's SIP dial-in / dial-out REST API.

One task per Daily operation, by area: ``tasks.rooms``, ``tasks.sip``, ``tasks.dialout``,
``tasks.transfers``, ``tasks.webhooks``, ``tasks.presence``. The plain async client is
``tasks.client.DailyClient``; the models are in ``tasks.models``.

Importing this package registers the ``DailyCredentials`` Block (it is also declared as a
``prefect.collections`` entry point, so Prefect finds it in any process).
"""

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
