"""The wheel, installed into a fresh virtualenv outside the checkout, next to a user's own project.

The user's project has its own ``tasks/`` and ``flows/`` packages, as Prefect projects often do.
Our distribution must install only ``daily_sip``, so both keep working side by side, and every
command must work from the installed package alone (no checkout on the path).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(900)


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (
        f"{cmd} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory, prefect_server) -> tuple[Path, Path, dict[str, str], Path]:
    """(venv bin dir, user project dir, environment, wheel)."""
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAILY_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env["PREFECT_API_URL"] = prefect_server.api_url
    run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"), str(REPO)],
        tmp,
        env,
    )
    [wheel] = (tmp / "dist").glob("daily_sip_flows-*.whl")
    run([sys.executable, "-m", "venv", str(tmp / "venv")], tmp, env)
    bin_dir = tmp / "venv" / "bin"
    run(
        [
            str(bin_dir / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "-c",
            str(REPO / "constraints.txt"),
            str(wheel),
        ],
        tmp,
        env,
        timeout=900,
    )
    project = tmp / "user-project"
    for package in ("tasks", "flows"):
        (project / package).mkdir(parents=True)
        (project / package / "__init__.py").write_text(f'WHOSE = "the user\'s {package}"\n')
    return bin_dir, project, env, wheel


def test_wheel_installs_one_namespaced_package(installed):
    *_, wheel = installed
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"daily_sip"}
    names = zipfile.ZipFile(wheel).namelist()
    for data in (
        "daily_sip/py.typed",
        "daily_sip/deployments/prefect.yaml",
        "daily_sip/deployments/campaigns/demo.yaml",
    ):
        assert data in names


def test_block_loads_by_slug_and_the_users_modules_still_import(installed):
    bin_dir, project, env, _ = installed
    script = (
        "from prefect.blocks.core import Block\n"
        "cls = Block.get_block_class_from_key('daily-credentials')\n"
        "import tasks, flows\n"
        "print(cls.__module__, '|', tasks.WHOSE, '|', flows.WHOSE)\n"
    )
    out = run([str(bin_dir / "python"), "-c", script], project, env).stdout
    assert out.strip() == "daily_sip.tasks.credentials | the user's tasks | the user's flows"


def test_emulator_serve_list_and_init_work_from_the_installed_package(installed):
    bin_dir, project, env, _ = installed
    proc = subprocess.Popen(
        [str(bin_dir / "daily-sip"), "emulator", "--port", "0"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        response = httpx.get(f"{url}/rooms", headers={"Authorization": "Bearer daily-standin-dev-key"})
        assert response.status_code == 200, response.text
    finally:
        proc.terminate()
        proc.wait(10)
    listed = run([str(bin_dir / "daily-sip"), "serve", "--list"], project, env).stdout
    for name in ("weekday-standup", "adhoc", "on-request", "standup-meeting"):
        assert f"dial-campaign/{name}" in listed
    run([str(bin_dir / "daily-sip"), "init", "deployments"], project, env)
    assert (project / "deployments" / "prefect.yaml").is_file()
    for campaign in sorted((project / "deployments" / "campaigns").glob("*.yaml")):
        run([str(bin_dir / "daily-sip"), "validate", str(campaign)], project, env)


def test_demo_runs_to_completion_from_the_installed_package(installed):
    bin_dir, project, env, _ = installed
    done = run([str(bin_dir / "daily-sip"), "demo"], project, env, timeout=600)
    assert "answered" in done.stdout and "Cleanup:" in done.stdout, done.stdout[-2000:]
