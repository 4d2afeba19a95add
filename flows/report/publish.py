"""What the operator sees in Prefect once a run ends: the results table, the summary and the
timeline as artifacts, and the closing log lines (`close_out`).

Keys are per campaign (`naming.artifact_key`), so the Artifacts page keeps each campaign's history.
"""

from __future__ import annotations

import contextlib
import json
import resource
import time
from datetime import UTC, datetime
from typing import Any

from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

from daily_sip.flows.report.board import Board
from daily_sip.flows.report.escape import md, plain
from daily_sip.flows.report.model import CampaignReport
from daily_sip.flows.report.naming import artifact_key
from daily_sip.flows.report.timeline import timeline_markdown


async def publish(report: CampaignReport) -> None:
    with contextlib.suppress(Exception):
        await acreate_table_artifact(
            table=[t.table_row() for t in report.targets],
            key=artifact_key(report.campaign, "results"),
            description=report.message_as(md),  # descriptions are markdown too
        )
        await acreate_markdown_artifact(
            markdown=report.summary_markdown(),
            key=artifact_key(report.campaign, "summary"),
            description=f"{md(report.campaign)}: {report.message_as(md)}",
        )
        if any(report.timeline):
            await acreate_markdown_artifact(
                markdown=timeline_markdown(report),
                key=artifact_key(report.campaign, "timeline"),
                description=f"{md(report.campaign)}: one lane per bridge",
            )


async def close_out(report: CampaignReport, board: Board | None, logger: Any, cpu_at_start: float) -> None:
    """Finish the report of a run that is over, whatever stopped it, and publish it.

    Legs still ``unknown`` when the campaign stopped early are ``canceled``; the board gets its
    final state; the results, summary and timeline artifacts are written; the log gets the verdict
    and one line of what the run cost here (`benchmarks/fleet.py` reads it).

    Example:
        ```python
        await close_out(run.report, run.board, run.logger, time.process_time())
        ```
    """
    report.finished_at = datetime.now(UTC)
    for t in report.targets:
        if t.status == "unknown" and report.error:
            t.status, t.detail = "canceled", t.detail or "not finished when the campaign stopped"
    if board is not None:
        await board.close()
    await publish(report)
    # The table is in the artifacts (and `daily-sip run` prints it): one line here, not twice.
    logger.info("%s (results: artifact %s)", plain(report.message), artifact_key(report.campaign, "results"))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    logger.info(
        "resources: %.3f s CPU in this run, %.3f s in its process, peak RSS %.0f MB",
        time.process_time() - cpu_at_start,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024,
    )


async def publish_for_run(report: CampaignReport, flow_run_id: str) -> None:
    """The same artifacts, attached to a run from outside it (a crash hook, the sweeper).

    Example:
        ```python
        await publish_for_run(report, "0a1b...")
        ```
    """
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import ArtifactCreate

    with contextlib.suppress(Exception):
        run_id = UUID(flow_run_id)
        async with get_client() as client:
            await client.create_artifact(
                ArtifactCreate(
                    # Tables are stored as JSON text, as acreate_table_artifact does.
                    key=artifact_key(report.campaign, "results"),
                    type="table",
                    data=json.dumps([t.table_row() for t in report.targets]),
                    description=report.message_as(md),
                    flow_run_id=run_id,
                )
            )
            await client.create_artifact(
                ArtifactCreate(
                    key=artifact_key(report.campaign, "summary"),
                    type="markdown",
                    data=report.summary_markdown(),
                    description=f"{md(report.campaign)}: {report.message_as(md)}",
                    flow_run_id=run_id,
                )
            )
