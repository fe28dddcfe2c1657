"""SPEC §9 / §3.1: `SENTRY_JIRA_DATABASE` picks the engine; a PostgreSQL URL is never shown
with its password; with PostgreSQL the secret key is required."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.config import ConfigError, load_settings, redacted_postgres_url
from adapters.logs import database_label
from tests.support.builders import TEST_FERNET_KEY

KEY = {"SENTRY_JIRA_SECRET_KEY": TEST_FERNET_KEY}


@pytest.mark.parametrize("url", [
    "postgresql://sj@db.internal:5432/sentry_jira",
    "postgres://sj@db.internal/sentry_jira",
    "postgresql:///sentry_jira?host=/run/postgresql",
])
def test_s9_a_postgresql_url_selects_postgresql_not_a_file(url: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"SENTRY_JIRA_DATABASE": url, **KEY})
    assert settings.engine == "postgresql"
    assert settings.postgres_url == url
    assert not list(tmp_path.iterdir())  # no file named like the URL


def test_s9_a_path_stays_sqlite() -> None:
    settings = load_settings({"SENTRY_JIRA_DATABASE": "/var/lib/sj/db.sqlite"})
    assert settings.engine == "sqlite"
    assert settings.postgres_url is None
    assert settings.database == Path("/var/lib/sj/db.sqlite")


@pytest.mark.parametrize("value", [
    "mysql://root@localhost/sj",
    "sqlite:///tmp/x.db",
    "file:///tmp/x.db",
    "https://example.com/db",
])
def test_s9_any_other_url_is_a_one_line_configuration_error(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"SENTRY_JIRA_DATABASE": value, **KEY})
    assert caught.value.variable == "SENTRY_JIRA_DATABASE"
    assert "\n" not in str(caught.value)


def test_s9_an_unreadable_postgresql_url_is_refused_without_echoing_it() -> None:
    url = "postgresql://sj:hunter2-secret@db/x?sslmode=bogus&password=hunter2-secret&=="
    with pytest.raises(ConfigError) as caught:
        load_settings({"SENTRY_JIRA_DATABASE": url, **KEY})
    assert caught.value.variable == "SENTRY_JIRA_DATABASE"
    assert "hunter2" not in str(caught.value)


def test_s9_postgresql_requires_the_secret_key() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"SENTRY_JIRA_DATABASE": "postgresql://sj@db/sentry_jira"})
    assert caught.value.variable == "SENTRY_JIRA_SECRET_KEY"
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("url", [
    "postgresql://sj:hunter2-secret@db.internal:6543/sentry_jira",
    "postgresql://sj@db.internal:6543/sentry_jira?password=hunter2-secret",
    "postgres://sj:hunter2-secret@db.internal:6543/sentry_jira?password=hunter2-secret"
    "&sslmode=require",
])
def test_s9_the_url_is_shown_without_its_password(url: str) -> None:
    settings = load_settings({"SENTRY_JIRA_DATABASE": url, **KEY})
    kind, location = database_label(settings)
    assert kind == "postgresql"
    assert "hunter2" not in location
    assert location.startswith("postgresql://sj@db.internal:6543/sentry_jira")
    assert "hunter2" not in repr(settings)


def test_s9_a_unix_socket_host_is_shown_readably() -> None:
    shown = redacted_postgres_url("postgresql:///sj?host=/run/postgresql&password=pw-secret")
    assert shown == "postgresql://%2Frun%2Fpostgresql/sj"


def test_s9_pool_size_is_read_and_bounded() -> None:
    base = {"SENTRY_JIRA_DATABASE": "postgresql://sj@db/x", **KEY}
    assert load_settings(base).database_pool_size == 10
    assert load_settings({**base, "SENTRY_JIRA_DATABASE_POOL_SIZE": "25"}).database_pool_size == 25
    for bad in ("0", "many", "-3"):
        with pytest.raises(ConfigError) as caught:
            load_settings({**base, "SENTRY_JIRA_DATABASE_POOL_SIZE": bad})
        assert caught.value.variable == "SENTRY_JIRA_DATABASE_POOL_SIZE"


def test_s9_cli_without_secret_key_on_postgresql_is_one_line_exit_2(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch
                                                                   ) -> None:
    from click.testing import CliRunner

    from adapters.cli.main import main

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["tenants", "list"], env={
        "SENTRY_JIRA_DATABASE": "postgresql://sj:hunter2-secret@127.0.0.1:1/sj",
        "SENTRY_JIRA_SECRET_KEY": "",
    })
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "SENTRY_JIRA_SECRET_KEY" in lines[0]
    assert "hunter2" not in result.output
    assert not list(tmp_path.iterdir())  # no SQLite file, no key file
