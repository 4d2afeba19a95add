"""The deploy-time step ``prefect.yaml`` calls in its ``build`` section.

Prefect runs any importable function as a step and templates its returned dict into the
deployment (``{{ <step id>.<key> }}``); see https://docs.prefect.io/v3/deploy/infrastructure-concepts/prefect-yaml
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import PACKAGE_DIR


def resolve_campaign_path(path: str | Path) -> Path:
    """A campaign path as written in ``prefect.yaml``: from the current directory, else shipped.

    ``prefect deploy`` runs from the folder that holds ``prefect.yaml``, so relative paths
    there are relative to it; the fallback finds the example campaigns shipped in the package.
    """
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p.resolve()
    return (PACKAGE_DIR / p).resolve()


def campaign_from_file(path: str, require_room: bool = False) -> dict[str, Any]:
    """Deployment step: a campaign file as the flow's ``campaign`` parameter.

    The file is validated like ``daily-sip validate``, so a bad file stops ``prefect deploy``
    with the list of bad fields instead of producing a deployment whose runs all fail.
    Returns ``{"campaign": {...}, "room": ..., "name": ..., "path": ...}``; the campaign is what
    the file sets, normalised, defaults left out.

    Example (in ``prefect.yaml``):
        ```yaml
        build:
          - daily_sip.deployments.steps.campaign_from_file:
              id: standup
              path: campaigns/weekday-standup.yaml
        parameters:
          campaign: "{{ standup.campaign }}"
        ```
    """
    from daily_sip.flows.campaign.model import load_campaign

    resolved = resolve_campaign_path(path)
    if not resolved.is_file():
        raise FileNotFoundError(f"campaign file {path} not found (looked for {resolved})")
    campaign = load_campaign(str(resolved))  # CampaignFileError lists every bad field
    if require_room and not campaign.room:
        raise ValueError(
            f"{resolved}: this deployment is tied to a room; set `room:` to the Daily room's name"
        )
    return {
        # None is every optional field's default, and the form schema types them as plain strings.
        "campaign": campaign.model_dump(mode="json", exclude_unset=True, exclude_none=True),
        "room": campaign.room or "",
        "name": campaign.name,
        "path": str(resolved),
    }
