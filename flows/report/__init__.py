"""The report: per-target outcomes and the verdict, the live board, and the artifacts that show them."""

from daily_sip.flows.report.model import CampaignReport, TargetResult

__all__ = ["CampaignReport", "TargetResult"]
