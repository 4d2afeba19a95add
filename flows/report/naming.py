"""Names an operator can read: flow runs and artifact keys that say which campaign they belong to.

Prefect names runs "rousing-firefly" and task runs "daily-start-dial-out-cdf" unless told
otherwise, and an artifact key shared by every campaign mixes their histories. Here:

* flow run: ``<campaign name> · 2026-11-30 09:00 UTC``;
* artifacts: ``<campaign-slug>-results`` etc., so each campaign keeps its own history.

The campaign flow makes its Daily calls without a task run each (`daily_sip.tasks.retries.inline`:
a task run per call was most of the Prefect server's cost per dial); its log names the bridge
on every step. A user's own flow calling the tasks gets task runs, and Prefect logs "Finished
in state Completed()" for each; `quiet_completed_tasks` drops exactly those lines.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any


def slug(text: str) -> str:
    """Artifact keys and room names allow lowercase letters, digits and dashes.

    >>> slug("Weekday Stand-up (EU)")
    'weekday-stand-up-eu'
    """
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:40].strip("-") or "campaign"


def artifact_key(campaign_name: str, what: str) -> str:
    """The key of one of a campaign's artifacts; the same campaign always gets the same key.

    >>> artifact_key("Weekday standup", "results")
    'weekday-standup-results'
    """
    return f"{slug(campaign_name)}-{what}"


def campaign_name_of(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("name") or "campaign")
    return str(getattr(value, "name", None) or "campaign")


def flow_run_name() -> str:
    """``flow_run_name`` of the campaign flow: the campaign's name and the start time (UTC).

    Example: ``weekday-standup · 2026-11-30 09:00 UTC``.
    """
    from prefect.runtime import flow_run

    name = campaign_name_of((flow_run.parameters or {}).get("campaign"))
    return f"{name} · {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"


def bridge_label(target: Any) -> str:
    """How a bridge is called in names and log lines: its display name, else its SIP URI."""
    return getattr(target, "display_name", None) or target.sip_uri


class _DropCompleted(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno == logging.INFO and str(record.msg).startswith("Finished in state Completed")
        )


_FILTER = _DropCompleted()


def quiet_completed_tasks() -> None:
    """Drop Prefect's "Finished in state Completed()" line per task run (idempotent)."""
    logger = logging.getLogger("prefect.task_runs")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
