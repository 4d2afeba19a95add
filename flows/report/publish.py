"""What the operator sees in Prefect: the results table and the summary, as artifacts.

Keys are per campaign (`naming.artifact_key`), so the Artifacts page keeps each campaign's history.
"""

from __future__ import annotations

import contextlib
import json

from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

from daily_sip.flows.report.model import CampaignReport
from daily_sip.flows.report.naming import artifact_key
from daily_sip.flows.report.timeline import timeline_markdown


async def publish(report: CampaignReport) -> None:
    with contextlib.suppress(Exception):
        await acreate_table_artifact(
            table=[t.row() for t in report.targets],
            key=artifact_key(report.campaign, "results"),
            description=report.message,
        )
        await acreate_markdown_artifact(
            markdown=report.summary_markdown(),
            key=artifact_key(report.campaign, "summary"),
            description=f"{report.campaign}: {report.message}",
        )
        if any(report.timeline):
            await acreate_markdown_artifact(
                markdown=timeline_markdown(report),
                key=artifact_key(report.campaign, "timeline"),
                description=f"{report.campaign}: one lane per bridge",
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
                    data=json.dumps([t.row() for t in report.targets]),
                    description=report.message,
                    flow_run_id=run_id,
                )
            )
            await client.create_artifact(
                ArtifactCreate(
                    key=artifact_key(report.campaign, "summary"),
                    type="markdown",
                    data=report.summary_markdown(),
                    description=f"{report.campaign}: {report.message}",
                    flow_run_id=run_id,
                )
            )
