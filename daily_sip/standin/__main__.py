"""`python -m daily_sip.standin --port 0 ...` runs the stand-in."""

import typer

from .cli import emulator

if __name__ == "__main__":
    typer.run(emulator)
