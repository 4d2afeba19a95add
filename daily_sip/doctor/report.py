"""The doctor's report on a terminal: one line per check, green or red, a red one with its fix."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from .checks import Check


def print_checks(console: Console, checks: list[Check]) -> None:
    """``✔ name: detail`` in green, ``✘ name: detail; fix: ...`` in red.

    Example:
        ```python
        print_checks(Console(), [Check("webhook", False, "FAILED", "re-activate it")])
        ```
    """
    width = max((len(c.name) for c in checks), default=0)
    for c in checks:
        mark, style = ("✔", "green") if c.ok else ("✘", "red")
        fix = f"; [bold]fix:[/bold] {escape(c.fix)}" if c.fix and not c.ok else ""
        console.print(f"[{style}]{mark} {escape(c.name.ljust(width))}[/{style}]  {escape(c.detail)}{fix}")
