"""HTTP API of the pacer.

``POST /v1/permits`` with ``{"rate": "dialout-start", "windows": [[5, 5.25]], "account": "...",
"after_429": false}`` reserves one permit and answers ``{"delay": seconds}``: the caller sends
its Daily request that many seconds later. Nothing is held open while a caller waits, so a
thousand waiting campaigns cost the pacer a thousand small requests, not a thousand pollers.
``after_429: true`` says Daily refused a call of that class anyway: nothing more is granted for
one window. ``GET /healthz`` answers ``{"ok": true, "books": {...}}`` with counts per class.

With ``token`` set, every ``/v1`` request needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
import logging
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .book import PermitBook

logger = logging.getLogger("daily_sip.pacer")


def _windows(raw: Any) -> tuple[tuple[int, float], ...]:
    if not isinstance(raw, list) or not raw:
        raise ValueError("windows must be a non-empty list of [count, seconds]")
    out = []
    for item in raw:
        count, seconds = item
        if int(count) < 1 or float(seconds) <= 0:
            raise ValueError("each window needs count >= 1 and seconds > 0")
        out.append((int(count), float(seconds)))
    return tuple(out)


def create_app(token: str | None = None) -> Starlette:
    """The pacer's Starlette app; books live as long as the app (one process = one truth)."""
    books: dict[tuple[str, str], PermitBook] = {}

    def _authorized(request: Request) -> bool:
        if not token:
            return True
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())

    async def permits(request: Request) -> JSONResponse:
        if not _authorized(request):
            return JSONResponse({"error": "authentication-error"}, status_code=401)
        try:
            body = await request.json()
            rate = str(body["rate"])
            windows = _windows(body["windows"])
            account = str(body.get("account") or "default")
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": "invalid-request-error", "info": str(exc)}, status_code=400)
        now = time.monotonic()
        book = books.get((account, rate))
        if book is None or book.windows != windows:
            if book is not None:
                logger.warning("%s/%s: windows changed from %s to %s (clients disagree on the "
                               "rate scale?)", account, rate, book.windows, windows)
                book.windows = windows
            else:
                book = books[(account, rate)] = PermitBook(windows)
        if body.get("after_429"):
            logger.warning("%s/%s: a client got 429 from Daily; granting nothing for one window",
                           account, rate)
            book.penalize(now)
        return JSONResponse({"delay": book.reserve(now) - now})

    async def healthz(request: Request) -> JSONResponse:
        now = time.monotonic()
        return JSONResponse({"ok": True, "books": {
            f"{account}/{rate}": {"granted": b.granted, "after_429": b.penalties,
                                  "backlog_seconds": round(b.backlog(now), 3)}
            for (account, rate), b in books.items()
        }})

    return Starlette(routes=[Route("/v1/permits", permits, methods=["POST"]),
                             Route("/healthz", healthz, methods=["GET"])])
