"""``python -m daily_sip.receiver``: the webhook receiver as a process."""

import typer

from .server import receiver

typer.run(receiver)
