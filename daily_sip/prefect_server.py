"""What our commands need of the Prefect API before they start."""

from __future__ import annotations

import typer

START_ONE = "Start one (`prefect server start`) and export PREFECT_API_URL=http://127.0.0.1:4200/api"


def require_prefect_server(why: str, alternative: str = "") -> None:
    """Exit 2 with ``why`` unless a Prefect API URL is configured (env or profile).

    Prefect's temporary local server would do otherwise, and it neither carries events between
    processes nor keeps anything after exit.
    """
    from prefect.settings import get_current_settings

    if get_current_settings().api.url:
        return
    typer.echo(f"PREFECT_API_URL is not set: {why}. {START_ONE}{alternative}.", err=True)
    raise typer.Exit(2)
