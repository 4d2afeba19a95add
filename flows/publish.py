"""What the operator sees in Prefect: the results table and the summary, as artifacts."""

from __future__ import annotations

import contextlib
import json

from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

from .report import CampaignReport


async def publish(report: CampaignReport) -> None:
    with contextlib.suppress(Exception):
        await acreate_table_artifact(
            table=[t.row() for t in report.targets], key="dial-campaign-results",
            description=report.message,
        )
        await acreate_markdown_artifact(
            markdown=report.summary_markdown(), key="dial-campaign-summary", description="Campaign summary"
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
            await client.create_artifact(ArtifactCreate(
                # Tables are stored as JSON text, as acreate_table_artifact does.
                key="dial-campaign-results", type="table", data=json.dumps([t.row() for t in report.targets]),
                description=report.message, flow_run_id=run_id))
            await client.create_artifact(ArtifactCreate(
                key="dial-campaign-summary", type="markdown", data=report.summary_markdown(),
                description="Campaign summary", flow_run_id=run_id))
