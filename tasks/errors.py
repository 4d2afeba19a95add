"""Typed failures of Daily calls, each knowing whether trying again can help."""

from __future__ import annotations


class DailyError(Exception):
    """Base of every failure raised by this library's Daily client."""

    transient: bool = False


class DailyKeyError(DailyError, ValueError):
    """An API key Daily could never accept (empty, whitespace, non-ASCII). Raised before any
    request; the message says what is wrong and where, never what the key is."""


class DailyTransportError(DailyError):
    """The request did not get an answer: connect failure or timeout. Worth retrying.

    ``maybe_applied`` is True when the request may have reached Daily (a read timeout),
    so a retry of a non-idempotent call could repeat it.
    """

    transient = True

    def __init__(self, message: str, *, method: str, path: str, maybe_applied: bool) -> None:
        super().__init__(f"{method} {path}: {message}")
        self.method = method
        self.path = path
        self.maybe_applied = maybe_applied


class DailyAPIError(DailyError):
    """Daily answered with an error status and its ``{"error", "info"}`` body."""

    def __init__(
        self,
        status: int,
        error: str | None,
        info: str | None,
        *,
        method: str,
        path: str,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.error = error
        self.info = info
        self.method = method
        self.path = path
        self.retry_after = retry_after
        detail = f"{error}: {info}" if info else (error or "no error body")
        super().__init__(f"{method} {path} -> HTTP {status} {detail}")

    @property
    def transient(self) -> bool:  # type: ignore[override]
        return self.status == 429 or self.status >= 500

    @property
    def maybe_applied(self) -> bool:
        """A 5xx may come after Daily acted (a lost answer); a 4xx means nothing happened."""
        return self.status >= 500


class DailyRateLimitError(DailyAPIError):
    """HTTP 429: too many requests in Daily's window. Transient."""


class DailyServerError(DailyAPIError):
    """HTTP 5xx. Transient."""


class DailyAuthError(DailyAPIError):
    """Missing or wrong API key (400 authorization-header-error, 401). Permanent."""


class DailyNotFoundError(DailyAPIError):
    """HTTP 404: the room, session or webhook does not exist (or a room hosts no call). Permanent."""


class DailyRequestError(DailyAPIError):
    """Any other 4xx: Daily refused the request as invalid. Permanent: fix the input."""


class DailyForbiddenError(DailyRequestError):
    """HTTP 403 ``forbidden-error``: the key was accepted, but this operation is not allowed
    here, e.g. a dial-out from a room without ``enable_dialout`` (daily-js calls it
    ``NOT_ALLOWED``, https://docs.daily.co/reference/daily-js/instance-methods/start-dial-out).
    Permanent: change the room or account settings, not the key."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.args = (
            f"{self.args[0]} (Daily accepted the API key but does not allow this operation here; "
            "for a dial-out, check the room's enable_dialout property)",
        )


def api_error_for(status: int, error: str | None, info: str | None, **kw) -> DailyAPIError:
    cls: type[DailyAPIError]
    if status == 429:
        cls = DailyRateLimitError
    elif status >= 500:
        cls = DailyServerError
    elif status == 401 or error in ("authentication-error", "authorization-header-error"):
        cls = DailyAuthError
    elif status == 403:
        cls = DailyForbiddenError
    elif status == 404:
        cls = DailyNotFoundError
    else:
        cls = DailyRequestError
    return cls(status, error, info, **kw)


def is_transient(exc: BaseException) -> bool:
    """True for failures a retry can cure: 429, 5xx, timeouts and connection errors."""
    return isinstance(exc, DailyError) and bool(exc.transient)
