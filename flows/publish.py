"""What the operator sees in Prefect: the results table and the summary, as artifacts.

Keys are per campaign (`naming.artifact_key`), so the Artifacts page keeps each campaign's history.
"""

from __future__ import annotations

import contextlib

from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

from .naming import artifact_key
from .report import CampaignReport
from .timeline import timeline_markdown


async def publish(report: CampaignReport) -> None:
    with contextlib.suppress(Exception):
        await acreate_table_artifact(
            table=[t.row() for t in report.targets], key=artifact_key(report.campaign, "results"),
            description=report.message,
        )
        await acreate_markdown_artifact(
            markdown=report.summary_markdown(), key=artifact_key(report.campaign, "summary"),
            description=f"{report.campaign}: {report.message}",
        )
        if any(report.timeline):
            await acreate_markdown_artifact(
                markdown=timeline_markdown(report), key=artifact_key(report.campaign, "timeline"),
                description=f"{report.campaign}: one lane per bridge",
            )
