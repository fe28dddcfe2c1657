"""§3.1 additions for the worker: SENTRY_JIRA_WORKER, _WORKER_LEASE_SECONDS, _SQLITE_SYNCHRONOUS."""

from __future__ import annotations

import pytest

from adapters.config import ConfigError
from tests.support.builders import a_settings


def test_the_worker_settings_default_to_an_in_process_worker_and_normal_sync() -> None:
    settings = a_settings()
    assert settings.run_worker is True
    assert settings.worker_lease_seconds == 30.0
    assert settings.sqlite_synchronous == "NORMAL"


def test_the_worker_settings_are_read() -> None:
    settings = a_settings(worker="off", worker_lease_seconds="2.5", sqlite_synchronous="full")
    assert settings.run_worker is False
    assert settings.worker_lease_seconds == 2.5
    assert settings.sqlite_synchronous == "FULL"


@pytest.mark.parametrize(("name", "value"), [
    ("worker", "maybe"),
    ("worker_lease_seconds", "0.5"),
    ("worker_lease_seconds", "soon"),
    ("sqlite_synchronous", "off"),
    ("sqlite_synchronous", "extra"),
])
def test_bad_worker_settings_stop_start_up_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        a_settings(**{name: value})
    assert err.value.variable == f"SENTRY_JIRA_{name.upper()}"


def test_full_synchronous_reaches_both_connections(tmp_path: object) -> None:
    from pathlib import Path

    from adapters.wiring import bootstrap

    assert isinstance(tmp_path, Path)
    container = bootstrap(a_settings(tmp_path, sqlite_synchronous="full"))
    try:
        assert container.database is not None and container.loop_connection is not None
        level = container.database.read_sync(
            lambda db: db.execute("PRAGMA synchronous").fetchone()[0])
        assert level == 2  # FULL
        assert container.loop_connection.conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    finally:
        if container.loop_connection is not None:
            container.loop_connection.close()
        container.close()
