"""`scripts/setup` (#18): a virtualenv made with a Python older than 3.11 is made again;
an interpreter older than 3.11 is refused with a hint about PYTHON=; `--runtime` installs
the project without the dev extra. Run on a copy of the scripts with stand-in interpreters
that record what they are asked (no network, no real install)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

from tests.support.paths import REPO

# A stand-in `python`: answers the version check with $FAKE_OK, makes a venv whose python
# is itself, and records every other call in $FAKE_LOG.
FAKE_PYTHON = r"""#!/usr/bin/env bash
echo "$0 $*" >> "$FAKE_LOG"
if [ "$1" = "-c" ]; then exit "$FAKE_STATUS"; fi
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin"
  cp "$FAKE_NEW" "$3/bin/python"
  chmod +x "$3/bin/python"
fi
exit 0
"""


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def a_checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "setup", root / "scripts" / "setup")
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    shutil.copy(REPO / "constraints.txt", root / "constraints.txt")
    executable(root / "src" / "adapters" / "__init__.py", "")
    return root


def interpreter(tmp_path: Path, name: str, *, new_enough: bool) -> Path:
    status = "0" if new_enough else "1"
    return executable(tmp_path / "bin" / name,
                      FAKE_PYTHON.replace('"$FAKE_STATUS"', status))


def setup(root: Path, python: Path, log: Path, *args: str) -> subprocess.CompletedProcess[str]:
    new = interpreter(root.parent, "venv-python", new_enough=True)
    env = {**os.environ, "PYTHON": str(python), "FAKE_LOG": str(log), "FAKE_NEW": str(new)}
    return subprocess.run([str(root / "scripts" / "setup"), *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_a_virtualenv_made_with_an_old_python_is_made_again(tmp_path: Path) -> None:
    root = a_checkout(tmp_path)
    old = interpreter(tmp_path, "old-venv-python", new_enough=False)
    (root / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(old, root / ".venv" / "bin" / "python")
    (root / ".venv" / "marker-of-the-old-one").write_text("")
    log = tmp_path / "calls.log"
    result = setup(root, interpreter(tmp_path, "python3.12", new_enough=True), log)
    assert result.returncode == 0, result.stderr
    assert "made with a Python older than 3.11" in result.stderr
    assert not (root / ".venv" / "marker-of-the-old-one").exists()
    calls = log.read_text()
    assert "-m venv .venv" in calls
    assert "-m pip install --quiet -c constraints.txt -e .[dev]" in calls


def test_a_python_older_than_3_11_is_refused_with_a_hint(tmp_path: Path) -> None:
    root = a_checkout(tmp_path)
    result = setup(root, interpreter(tmp_path, "python3.9", new_enough=False),
                   tmp_path / "calls.log")
    assert result.returncode == 2
    assert "set PYTHON=" in result.stderr
    assert not (root / ".venv").exists()


def test_runtime_mode_installs_without_the_dev_extra_in_its_own_virtualenv(
    tmp_path: Path,
) -> None:
    root = a_checkout(tmp_path)
    log = tmp_path / "calls.log"
    result = setup(root, interpreter(tmp_path, "python3.12", new_enough=True), log,
                   "--runtime")
    assert result.returncode == 0, result.stderr
    calls = log.read_text()
    assert "-m venv .venv-serve" in calls
    assert "-m pip install --quiet -c constraints.txt ." in calls
    assert "[dev]" not in calls and "-e " not in calls
    # A second run with nothing changed installs nothing.
    log.write_text("")
    assert setup(root, interpreter(tmp_path, "python3.12", new_enough=True), log,
                 "--runtime").returncode == 0
    assert "pip install" not in log.read_text()


def test_scripts_serve_runs_the_runtime_install() -> None:
    text = (REPO / "scripts" / "serve").read_text()
    assert "scripts/setup --runtime" in text
    assert "exec .venv-serve/bin/sentry-jira serve" in text
