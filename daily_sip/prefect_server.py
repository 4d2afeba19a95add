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

    url = get_current_settings().api.url
    if not url:
        typer.echo(f"PREFECT_API_URL is not set: {why}. {START_ONE}{alternative}.", err=True)
        raise typer.Exit(2)
    problem = _unreachable(url)
    if problem:
        typer.echo(
            f"no Prefect server answers at PREFECT_API_URL={url} ({problem}): {why}. "
            f"Start it (`prefect server start`) or fix PREFECT_API_URL{alternative}.",
            err=True,
        )
        raise typer.Exit(2)


def _unreachable(api_url: str) -> str | None:
    """Why nothing answers at the API URL, or None when something does (any HTTP status will do:
    Prefect Cloud may want a key for ``/health``, and the commands report that themselves)."""
    import httpx

    try:
        httpx.get(f"{api_url.rstrip('/')}/health", timeout=5)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None
