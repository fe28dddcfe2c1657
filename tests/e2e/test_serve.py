"""`sentry-jira serve` as a real process: it serves the descriptor; bad start-ups are refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.support.builders import TEST_FERNET_KEY
from tests.support.process import free_port, running_server, serve_command, server_env

pytestmark = pytest.mark.e2e


def test_serve_starts_on_a_free_port_and_serves_the_descriptor(tmp_path: Path) -> None:
    port = free_port()
    env = {"SENTRY_JIRA_DATABASE": str(tmp_path / "db.sqlite")}
    with running_server(env, port=port) as (url, _):
        response = httpx.get(url + "/extensions/jira/descriptor/", timeout=5)
        health = httpx.get(url + "/health", timeout=5)
    assert response.status_code == 200
    assert response.json()["baseUrl"] == f"http://127.0.0.1:{port}"
    assert health.status_code == 200
    assert (tmp_path / "db.sqlite.key").exists()  # generated beside the database


def run_serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        serve_command(free_port()), env=server_env(env), capture_output=True, text=True, timeout=30
    )


def test_start_up_refuses_a_bad_variable_naming_it(tmp_path: Path) -> None:
    result = run_serve(
        {
            "SENTRY_JIRA_DATABASE": str(tmp_path / "db.sqlite"),
            "SENTRY_JIRA_JWT_LEEWAY_SECONDS": "600",
        }
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "SENTRY_JIRA_JWT_LEEWAY_SECONDS" in lines[0]
    assert not (tmp_path / "db.sqlite").exists()


def test_start_up_refuses_a_wrong_secret_key_over_an_encrypted_database(tmp_path: Path) -> None:
    env = {
        "SENTRY_JIRA_DATABASE": str(tmp_path / "db.sqlite"),
        "SENTRY_JIRA_SECRET_KEY": TEST_FERNET_KEY,
    }
    with running_server(env):
        pass
    wrong = Fernet.generate_key().decode()
    result = run_serve({**env, "SENTRY_JIRA_SECRET_KEY": wrong})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "SENTRY_JIRA_SECRET_KEY" in lines[0]
    assert wrong not in result.stderr
