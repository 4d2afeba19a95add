"""``python -m daily_sip.pacer``: the shared pacer as a process."""

import typer

from .server import pacer

typer.run(pacer)
