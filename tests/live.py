"""The live target: real Daily, only when asked (``DAILY_LIVE=1`` and ``DAILY_API_KEY``); never in CI.

``pytest -m live`` selects the tests marked ``live``; without both variables each is skipped with the
reason below. What a live run may touch is named by the user, never guessed:

- ``DAILY_LIVE_SIP_URI``: the SIP URI the dial-out calls (one you own; skipped without it);
- ``DAILY_LIVE_TRANSFER_URI``: where ``sipCallTransfer`` / ``sipRefer`` send that call (else not driven);
- ``DAILY_LIVE_WEBHOOK_URL``: a public URL answering 200 (e.g. ``daily-sip receiver`` behind a tunnel)
  for webhook create/update/delete, driven only when the domain has no webhook of its own;
- ``DAILY_LIVE_REPORT``: where the difference report goes (default ``live-contract-report.json``).
"""

from __future__ import annotations

import os

import pytest

LIVE_ENABLED = os.environ.get("DAILY_LIVE") == "1" and bool(os.environ.get("DAILY_API_KEY"))
SKIP_REASON = (
    "live Daily test: set DAILY_LIVE=1 and DAILY_API_KEY (plus DAILY_LIVE_SIP_URI, a SIP URI you own) to run "
    "it against https://api.daily.co/v1; see docs/first-contact.md"
)


def skip_live_unless_enabled(items: list[pytest.Item]) -> None:
    if LIVE_ENABLED:
        return
    for item in items:
        if item.get_closest_marker("live") is not None:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))
