"""The campaign: what to dial (targets, bridge profiles, DTMF scripts) and what counts as success.

`Campaign` is the flow's parameter and the schema of a campaign file (`load_campaign`).
"""

from daily_sip.flows.campaign.model import (
    ANSWERED,
    REDIALABLE,
    Campaign,
    CampaignFileError,
    Outcome,
    Target,
    load_campaign,
)

__all__ = ["ANSWERED", "REDIALABLE", "Campaign", "CampaignFileError", "Outcome", "Target", "load_campaign"]
