"""The layers: `tasks/` is the lowest, the servers and the flows build on it, never the reverse.

Daily's shared vocabulary (the webhook signature, the event names and resource ids, the permit
window) lives once in `tasks/`; the receiver, the pacer and the flows import it from there. These
checks read the sources (every import, also inside functions and ``TYPE_CHECKING`` blocks), so a
wrong import fails here even where no test happens to execute it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Where each package of the `package-dir` mapping lives (pyproject.toml).
HOMES = {"daily_sip.tasks": ROOT / "tasks", "daily_sip.flows": ROOT / "flows"}

SERVERS = ("daily_sip.pacer", "daily_sip.receiver", "daily_sip.standin")
ABOVE_TASKS = (*SERVERS, "daily_sip.flows", "daily_sip.deployments")
ABOVE_FLOWS = ("daily_sip.pacer", "daily_sip.receiver")


def modules(package: str) -> list[tuple[str, Path]]:
    """``(dotted module name, path)`` of every module of ``package``, from its folder."""
    home = HOMES[package]
    found = []
    for path in sorted(home.rglob("*.py")):
        parts = list(path.relative_to(home).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found.append((".".join([package, *parts]), path))
    return found


def imports(module: str, path: Path) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in the file, relative ones resolved."""
    is_package = path.name == "__init__.py"
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            # `from daily_sip import receiver` imports the package `daily_sip.receiver`.
            out += [(node.lineno, name), *((node.lineno, f"{name}.{alias.name}") for alias in node.names)]
    return out


def offending(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for module, path in modules(package)
        for line, name in imports(module, path)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]


def test_the_scan_sees_the_packages_and_resolves_relative_imports():
    names = {m for m, _ in modules("daily_sip.tasks")}
    assert {"daily_sip.tasks", "daily_sip.tasks.ratelimit", "daily_sip.tasks.models.events"} <= names
    found = {name for _, name in imports("daily_sip.tasks.ratelimit", ROOT / "tasks" / "ratelimit.py")}
    assert "daily_sip.tasks.window" in found  # `from .window import PermitBook`
    found = {name for _, name in imports("daily_sip.tasks.models.events", ROOT / "tasks/models/events.py")}
    assert "daily_sip.tasks.events" in found  # `from ..events import DailyType`


def test_tasks_import_nothing_above_them():
    """No client module imports a server, a flow or a deployment."""
    assert offending("daily_sip.tasks", ABOVE_TASKS) == []


def test_flows_import_no_server():
    """The flows take the signature and the event names from `tasks`, not from the receiver."""
    assert offending("daily_sip.flows", ABOVE_FLOWS) == []


def test_the_servers_get_the_vocabulary_without_prefect():
    """`daily_sip.tasks` loads its names on first use, so the vocabulary costs the pacer, the
    receiver and the stand-in no Prefect, no client and no Block."""
    script = (
        "import sys\n"
        "import daily_sip.pacer.app, daily_sip.receiver.app, daily_sip.receiver.events\n"
        "import daily_sip.standin.backend\n"
        "import daily_sip.tasks.events, daily_sip.tasks.signature, daily_sip.tasks.window\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] == 'prefect'\n"
        "               or m in ('daily_sip.tasks.client', 'daily_sip.tasks.credentials'))\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_the_package_still_exports_its_names():
    import daily_sip.tasks as tasks
    from daily_sip.tasks.credentials import DailyCredentials
    from daily_sip.tasks.errors import DailyError

    assert tasks.DailyCredentials is DailyCredentials and tasks.DailyError is DailyError
    assert all(getattr(tasks, name) is not None for name in tasks.__all__)
    with pytest.raises(AttributeError):
        _ = tasks.NoSuchName  # type: ignore[attr-defined]  # (the point of the check)


def test_the_receiver_signing_module_still_imports():
    from daily_sip.receiver import signing
    from daily_sip.tasks import signature

    assert signing.Verifier is signature.Verifier and signing.sign is signature.sign


def test_docstring_examples_hold():
    import doctest

    from daily_sip.tasks import events, window

    for module in (events, window):
        assert doctest.testmod(module).failed == 0, module.__name__
