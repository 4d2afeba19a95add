"""Names an operator can read: flow runs and artifact keys that say which campaign they belong to.

Prefect names runs "rousing-firefly" and task runs "daily-start-dial-out-cdf" unless told
otherwise, and an artifact key shared by every campaign mixes their histories. Here:

* flow run: ``<campaign name> · 2026-11-30 09:00 UTC``;
* artifacts: ``<campaign-slug>-results`` etc., so each campaign keeps its own history.
* task runs: ``provision room``, ``await ready``, ``dial <bridge> #<attempt>``, ``clean up``
  (`daily_sip.flows.steps`).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from daily_sip.flows.report.escape import plain


def slug(text: str) -> str:
    """Artifact keys and room names allow lowercase letters, digits and dashes.

    >>> slug("Weekday Stand-up (EU)")
    'weekday-stand-up-eu'
    """
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:40].strip("-") or "campaign"


def campaign_key(campaign_name: str) -> str:
    """The campaign's part of its artifact keys: its slug, plus a short hash of the full name when
    the slug lost letters or digits (non-Latin letters, a name cut at 40), so different names
    never share a history. Names that differ only in case, spaces or punctuation share it.

    >>> campaign_key("Weekday Stand-up (EU)")
    'weekday-stand-up-eu'
    >>> campaign_key("Погода"), campaign_key("Новости")
    ('campaign-4f7637e3', 'campaign-715453f2')
    """
    base = slug(campaign_name)
    if [c for c in campaign_name.lower() if c.isalnum()] == [c for c in base if c.isalnum()]:
        return base
    digest = hashlib.sha256(campaign_name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{base}-{digest}"


def artifact_key(campaign_name: str, what: str) -> str:
    """The key of one of a campaign's artifacts; the same campaign always gets the same key.

    >>> artifact_key("Weekday standup", "results")
    'weekday-standup-results'
    """
    return f"{campaign_key(campaign_name)}-{what}"


def campaign_name_of(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("name") or "campaign")
    return str(getattr(value, "name", None) or "campaign")


def flow_run_name() -> str:
    """``flow_run_name`` of the campaign flow: the campaign's name and the start time (UTC).

    Example: ``weekday-standup · 2026-11-30 09:00 UTC``.
    """
    from prefect.runtime import flow_run

    name = plain(campaign_name_of((flow_run.parameters or {}).get("campaign")))
    return f"{name} · {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"


def bridge_label(target: Any) -> str:
    """How a bridge is called in names and log lines: its display name, else its SIP URI (one
    line, no control characters)."""
    return plain(getattr(target, "display_name", None) or target.sip_uri)


def clip(text: str, limit: int) -> str:
    """Text for a table cell of at most ``limit`` characters (tables must fit the Prefect UI's
    artifact column; the full text is in the summary and the run's result).

    >>> clip("far end hung up 2.0 s after the last tone; check meeting ID / passcode", 40)
    'far end hung up 2.0 s after the last to…'
    """
    return text if len(text) <= limit else text[: limit - 1] + "…"
