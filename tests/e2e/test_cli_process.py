"""§A administration CLI as real processes: the installed console script and `python -m`, with
argv, stdin and the environment read by the operating system, not by click's test runner.
The in-process tests of every command are in tests/cli/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.model.tenant import Tenant
from tests.cli import test_cli_admin as admin_cli
from tests.cli.test_cli_admin_argv import PASTED
from tests.support.admin_api import SENTRY_TOKEN
from tests.support.builders import TEST_FERNET_KEY
from tests.support.engines import Storage, table_rows
from tests.support.process import server_env

pytestmark = pytest.mark.e2e

# The fixtures of the admin CLI tests: a database path and one installed tenant.
env = admin_cli.env
settings = admin_cli.settings
tenant = admin_cli.tenant


def test_A_the_installed_command_runs_as_a_process(env: dict[str, str], tenant: Tenant) -> None:
    command = [
        "-m",
        "adapters.cli.main",
        "orgs",
        "bind",
        str(tenant.id),
        "acme",
        "--sentry-url",
        "https://sentry.io",
    ]
    done = subprocess.run(
        [sys.executable, *command, "--sentry-token-stdin", "--json"],
        input=SENTRY_TOKEN + "\n",
        env=server_env(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sentry_token"] == "***"
    refused = subprocess.run(
        [sys.executable, *command, "--sentry-token", SENTRY_TOKEN],
        env=server_env(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1
    assert SENTRY_TOKEN not in refused.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "adapters.cli.main", "tenants", "show", "404"],
        env=server_env(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1 and missing.stderr.strip() == "sentry-jira: no tenant 404"


def test_A_the_installed_command_does_not_echo_a_pasted_token(env: dict[str, str]) -> None:
    """The real console script, as a process: argv is read from the command line itself."""
    command = os.path.join(os.path.dirname(sys.executable), "sentry-jira")
    for argv in (["orgs", "bind", "1", "acme", PASTED], [PASTED], ["serve", "--port", PASTED]):
        done = subprocess.run(
            [command, *argv],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert PASTED not in done.stdout + done.stderr
        assert done.stderr.startswith("sentry-jira: ")


@pytest.mark.parametrize("args", [["tenants", "list"], ["dead-letters", "list"]], ids=" ".join)
def test_s9_a_read_only_command_as_a_process_creates_no_tables_in_an_empty_database(
    storage: Storage, tmp_path: Path, args: list[str],
) -> None:
    """#16, both engines as real processes: an empty PostgreSQL database, an empty SQLite
    file — exit 1, one line naming `serve`/`worker`, and still no table afterwards."""
    if storage.url is None:
        (tmp_path / "sentry-jira.db").touch()
    environ = {**storage.env(tmp_path), "SENTRY_JIRA_SECRET_KEY": TEST_FERNET_KEY}
    done = subprocess.run([sys.executable, "-m", "adapters.cli.main", *args],
                          env=server_env(environ), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "holds no sentry-jira schema; `sentry-jira serve` or `sentry-jira worker`" in line
    assert done.stdout == ""
    assert table_rows(storage.where(tmp_path)) == {}
