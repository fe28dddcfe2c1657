"""Production install (#18; SPEC §3): the wheel builds, installs into a clean virtualenv with
the pinned runtime dependencies only, and its console script answers `--version` and
serves `/health` — from a directory that holds no source tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

from tests.support.paths import REPO
from tests.support.process import free_port, wait_until_ready

pytestmark = pytest.mark.e2e


def build_wheel(workdir: Path) -> Path:
    """`python -m build --wheel` on a copy of the project (the worktree is left as it was)."""
    source = workdir / "source"
    shutil.copytree(REPO / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    out = workdir / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(source)],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = out.glob("sentry_jira-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The `bin` directory of a fresh virtualenv with the wheel installed."""
    workdir = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(workdir)
    venv = workdir / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
         "-c", str(REPO / "constraints.txt"), str(wheel)],
        capture_output=True, text=True, timeout=900, check=False)
    assert pip.returncode == 0, pip.stderr[-2000:]
    yield venv / "bin"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SENTRY_JIRA_", "PYTHON", "VIRTUAL_ENV"))}
    return {**env, **extra}


def test_the_installed_wheel_has_no_dev_tools(installed: Path) -> None:
    for tool in ("pytest", "mypy", "ruff", "lint-imports"):
        assert not (installed / tool).exists(), tool


def test_the_installed_command_prints_its_version(installed: Path, tmp_path: Path) -> None:
    result = subprocess.run([str(installed / "sentry-jira"), "--version"], cwd=tmp_path,
                            env=clean_env(), capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"sentry-jira {version('sentry-jira')}"


def test_the_installed_command_serves_health(installed: Path, tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(SENTRY_JIRA_DATABASE=str(tmp_path / "sentry-jira.db"),
                    SENTRY_JIRA_LOG_FORMAT="json")
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(installed / "sentry-jira"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}/health"
            wait_until_ready(url, proc, timeout=60)
            health = httpx.get(url, timeout=10)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    assert health.status_code == 200, health.text
    assert health.json()["status"] == "ok"
    assert '"event":"startup"' in log.read_text()
    assert (tmp_path / "sentry-jira.db").exists()
    # The code that ran is the wheel's, not a source tree's.
    where = subprocess.run([str(installed / "python"), "-c",
                            "import adapters; print(adapters.__file__)"],
                           cwd=tmp_path, env=clean_env(), capture_output=True, text=True,
                           timeout=60, check=True)
    assert where.stdout.startswith(str(installed.parent / "lib")), where.stdout
