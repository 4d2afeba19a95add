"""Daily-shaped API errors: an HTTP status and a body `{"error", "info"}`.

Daily answers every failure with that body; `error` is one of its fixed strings
(`invalid-request-error`, `not-found`, `authentication-error`, `rate-limit-error`, ...) and
`info` says what was wrong (https://docs.daily.co/reference/rest-api).
"""

from __future__ import annotations

from typing import Any


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


#: Daily's 404 `info` when a call operation targets a room without a live meeting
#: (https://docs.daily.co/reference/rest-api/rooms/dialout).
NOT_HOSTING = "Room is not hosting a call"
