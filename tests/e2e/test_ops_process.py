"""SPEC §3 start-up as real processes (#18): `--version`, the start-up line and the
unknown-variable warning of `serve`, a port in use refused in one line before the database
is opened, the `worker` command's start and stop lines."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.support.process import running_server, serve_command, server_env

pytestmark = pytest.mark.e2e


def test_version_as_a_process() -> None:
    result = subprocess.run([sys.executable, "-m", "adapters.cli.main", "--version"],
                            env=server_env({}), capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == f"sentry-jira {version('sentry-jira')}"


def test_serve_logs_its_start_up_and_warns_about_an_unknown_variable(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    env = {"SENTRY_JIRA_DATABASE": str(tmp_path / "db.sqlite"),
           "SENTRY_JIRA_LOG_FORMAT": "json",
           "SENTRY_JIRA_ADMIN_TOKENS": "a-token-under-the-wrong-name-0123"}
    with running_server(env, log=log):
        pass
    events = [json.loads(line) for line in log.read_text().splitlines()]
    names = [e["event"] for e in events]
    assert names[0] == "config_warning" and events[0]["closest"] == "SENTRY_JIRA_ADMIN_TOKEN"
    [startup] = [e for e in events if e["event"] == "startup"]
    assert startup["admin_api"] == "off"  # the misspelt variable did not turn it on
    assert startup["worker"] == "on"
    assert "worker_start" in names and "worker_stop" in names
    assert "a-token-under-the-wrong-name" not in log.read_text()


def test_serve_on_a_port_in_use_is_one_line_exit_2_and_opens_no_database(
    tmp_path: Path,
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            serve_command(port), env=server_env({"SENTRY_JIRA_DATABASE": str(tmp_path / "x.db")}),
            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"sentry-jira: port {port} is in use: pass --port"
    ]
    assert list(tmp_path.iterdir()) == []


def test_the_worker_command_logs_its_start_and_stop(tmp_path: Path) -> None:
    env = server_env({"SENTRY_JIRA_DATABASE": str(tmp_path / "db.sqlite"),
                      "SENTRY_JIRA_LOG_FORMAT": "json"})
    proc = subprocess.Popen([sys.executable, "-m", "adapters.cli.main", "worker"], env=env,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:  # until the start line: then stop it
        lines.append(json.loads(line))
        if lines[-1]["event"] == "worker_start":
            break
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=30)
    lines += [json.loads(line) for line in rest.splitlines()]
    assert proc.returncode == 0
    names = [line["event"] for line in lines]
    assert names[0] == "startup" and lines[0]["process"] == "worker"
    assert names[-1] == "worker_stop"
