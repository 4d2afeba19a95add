"""The shipped prefect.yaml is the rendering of the one deployment definition."""

from __future__ import annotations

from daily_sip.deployments import PREFECT_FILE
from daily_sip.deployments.definitions import render_prefect_yaml


def test_shipped_prefect_yaml_is_rendered_from_the_definitions():
    assert PREFECT_FILE.read_text() == render_prefect_yaml(), (
        "deployments/prefect.yaml is out of date: regenerate it with "
        "`daily-sip init deployments --force` from the repository root"
    )
