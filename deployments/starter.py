"""``daily-sip init``: a starter deployments folder in your own repository.

Writes ``prefect.yaml`` (rendered from `definitions`) and the example campaigns, ready for
``prefect deploy --all`` from that folder. Existing files are left alone unless ``--force``.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from daily_sip.terminal import command

from . import CAMPAIGNS_DIR
from .definitions import DEFAULT_BLOCK, DEFAULT_POOL, render_prefect_yaml


def write_starter(
    directory: Path, *, block: str = DEFAULT_BLOCK, pool: str = DEFAULT_POOL, force: bool = False
) -> list[tuple[Path, str]]:
    """Write the starter; returns (path, "written" | "kept") per file."""
    files: dict[Path, str] = {directory / "prefect.yaml": render_prefect_yaml(block=block, pool=pool)}
    for example in sorted(CAMPAIGNS_DIR.glob("*.yaml")):
        files[directory / "campaigns" / example.name] = example.read_text()
    done = []
    for path, text in files.items():
        if path.exists() and not force:
            done.append((path, "kept"))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        done.append((path, "written"))
    return done


def init(
    directory: Annotated[Path, typer.Argument(help="Folder to write into (created if missing).")] = Path(
        "deployments"
    ),
    credentials_block: Annotated[
        str, typer.Option(help="Credentials block the deployments use.")
    ] = DEFAULT_BLOCK,
    work_pool: Annotated[str, typer.Option(help="Work pool the deployments run on.")] = DEFAULT_POOL,
    force: Annotated[bool, typer.Option(help="Overwrite files that exist.")] = False,
) -> None:
    """Write a starter deployments folder (prefect.yaml + example campaigns) into your repository."""
    for path, what in write_starter(directory, block=credentials_block, pool=work_pool, force=force):
        typer.echo(f"{what:>7}  {path}" + ("  (exists; --force overwrites)" if what == "kept" else ""))
    # Each line runs as shown from here, venv activated or not (`.venv/bin/prefect`, see `command`);
    # the deploy runs in a subshell, so the next line starts from here again.
    deploy = f"(cd {shlex.quote(str(directory))} && {command('prefect', run_in=directory)} deploy --all)"
    typer.echo("Next, from this folder:")
    typer.echo(f"  {command('daily-sip')} setup")
    typer.echo(f"  {deploy}")
    typer.echo(f"  {command('prefect')} worker start --pool {shlex.quote(work_pool)}")
