"""One cheap call that proves the API key and URL work, before anything is provisioned.

A wrong key or a dead URL would otherwise surface half-way through provisioning, after retries,
as a traceback about a room that was never created. ``GET /rooms?limit=1``
(https://docs.daily.co/reference/rest-api/rooms/list-rooms) needs a valid key, changes nothing
and answers fast. It is sent once, without retries: whatever is wrong is reported at once, in one
line that names the cause and the fix.
"""

from __future__ import annotations

import hashlib

import httpx

from daily_sip.flows.supervision.per_loop import AtMostEvery, per_loop
from daily_sip.tasks import DailyCredentials
from daily_sip.tasks.client import DailyClient
from daily_sip.tasks.errors import (
    DailyAPIError,
    DailyAuthError,
    DailyError,
    DailyNotFoundError,
    DailyTransportError,
)
from daily_sip.tasks.ratelimit import DEFAULT
from daily_sip.tasks.retries import paced_call
from daily_sip.tasks.signature import decode_secret

# A live API answers a list of one room well within this; a wrong host should not hold a run up.
PREFLIGHT_TIMEOUT_SECONDS = 10.0


class PreflightError(DailyError):
    """The Daily API cannot be used with these credentials; the message says why and what to do."""


def explain(exc: BaseException, api_url: str) -> str:
    """One line naming the cause of a failed Daily call and its fix (never the key itself).

    >>> explain(DailyTransportError("ConnectError: refused", method="GET", path="/rooms",
    ...                             maybe_applied=False), "http://127.0.0.1:9/v1")  # doctest: +ELLIPSIS
    'cannot reach the Daily API at http://127.0.0.1:9/v1 (ConnectError: refused); ...'
    """
    if isinstance(exc, DailyAuthError):
        return (
            f"the Daily API at {api_url} refused the API key (HTTP {exc.status} {exc.error or ''}"
            f"{': ' + exc.info if exc.info else ''}); check DAILY_API_KEY or the credentials "
            "block's api_key (Daily dashboard > Developers)"
        ).replace(" )", ")")
    if isinstance(exc, DailyNotFoundError):
        return (
            f"{api_url} is not the Daily REST API (GET /rooms answered 404); the URL ends in /v1, "
            "e.g. https://api.daily.co/v1 or http://127.0.0.1:8787/v1 for the stand-in"
        )
    if isinstance(exc, DailyTransportError):
        cause = str(exc).split(": ", 1)[-1]
        return (
            f"cannot reach the Daily API at {api_url} ({cause}); check DAILY_API_URL or the "
            "credentials block's api_url, or start the stand-in (daily-sip emulator)"
        )
    if isinstance(exc, DailyAPIError):
        return f"the Daily API at {api_url} answered {exc}; check the API key and URL"
    if isinstance(exc, httpx.InvalidURL):
        return f"{api_url!r} is not a URL; set DAILY_API_URL to e.g. https://api.daily.co/v1"
    return f"the Daily API at {api_url} cannot be used: {exc}"


async def preflight(creds: DailyCredentials) -> None:
    """Raise `PreflightError` unless one ``GET /rooms?limit=1`` succeeds with these credentials.

    Example:
        ```python
        from daily_sip.flows.provision.preflight import preflight
        from daily_sip.tasks import DailyCredentials

        await preflight(DailyCredentials.from_env())  # PreflightError: cannot reach ...
        ```
    """
    timeout = min(creds.timeout_seconds, PREFLIGHT_TIMEOUT_SECONDS)
    try:
        # Paced, and a 429 waited out: at the top of the hour many campaigns check at once.
        async with DailyClient(creds.api_key, creds.api_url, timeout=timeout) as daily:
            await paced_call(DEFAULT, lambda: daily.list_rooms(limit=1))
    except (DailyError, httpx.InvalidURL) as exc:
        raise PreflightError(explain(exc, creds.api_url)) from None


async def credentials_or_explain(block_name: str | None) -> DailyCredentials:
    """The run's credentials: the named block, else the environment; `PreflightError` if neither,
    or if their webhook secret cannot be Daily's (not base64): checked before any Daily call.

    Example:
        ```python
        creds = await credentials_or_explain("daily")  # or None for DAILY_API_KEY / DAILY_API_URL
        ```
    """
    if block_name:
        try:
            creds = await DailyCredentials.aload(block_name)
        except ValueError:
            raise PreflightError(
                f"no DailyCredentials block named {block_name!r} on this Prefect server; create it with "
                f"`daily-sip setup --block-name {block_name} --api-key ...`"
            ) from None
        return _with_usable_secret(creds, f"the webhook_secret of block {block_name!r}")
    try:
        creds = DailyCredentials.from_env()
    except ValueError:
        raise PreflightError(
            "no Daily credentials: set DAILY_API_KEY (and DAILY_API_URL for the stand-in) or pass "
            "--credentials-block with a block saved by `daily-sip setup`"
        ) from None
    return _with_usable_secret(creds, "DAILY_WEBHOOK_SECRET")


def _with_usable_secret(creds: DailyCredentials, where: str) -> DailyCredentials:
    if creds.webhook_secret is not None:
        try:
            decode_secret(creds.webhook_secret)
        except ValueError as exc:  # the message never shows the secret
            raise PreflightError(
                f"{where}: {exc}; set it to the `hmac` secret of your Daily webhook (a base64 string)"
            ) from None
    return creds


# Campaigns of one process mostly share one key: the first proves it, the others within this
# long take that proof instead of each asking Daily. A key revoked in the meantime fails the
# run's first real call, which says so.
PROOF_VALID_SECONDS = 60.0


_proofs = per_loop(lambda: AtMostEvery(PROOF_VALID_SECONDS))


async def proven_credentials(block_name: str | None) -> DailyCredentials:
    """`credentials_or_explain` then `preflight`; the proof of a key and URL is shared by the
    campaigns of a process for `PROOF_VALID_SECONDS`. A failure is not remembered.

    Example:
        ```python
        creds = await proven_credentials("daily")  # PreflightError names the cause and the fix
        ```
    """
    creds = await credentials_or_explain(block_name)
    key = (creds.api_url, hashlib.sha256(creds.api_key.get_secret_value().encode()).hexdigest())
    await _proofs().run(key, lambda: preflight(creds))
    return creds
