"""SPEC §3.1: configuration is parsed in one place; a bad value names its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.config import ConfigError, load_settings
from tests.support.builders import TEST_FERNET_KEY


def test_defaults_follow_the_serve_address() -> None:
    settings = load_settings({}, host="127.0.0.1", port=9000)
    assert settings.app.base_url == "http://127.0.0.1:9000"
    assert settings.app.app_key == "127.0.0.1.jira"
    assert settings.app.app_name == "Sentry"
    assert settings.database == Path("./sentry-jira.db")
    assert settings.secret_keys == ()
    assert settings.install_keys_url == "https://connect-install-keys.atlassian.com"
    assert [str(p) for p in settings.app.jira_hosts] == [
        "https://*.atlassian.net",
        "https://*.jira.com",
    ]
    assert settings.admin_tokens == ()
    assert settings.app.use_email_scope is False
    assert settings.app.jwt_leeway_seconds == 30
    assert settings.http_timeout_seconds == 10
    assert settings.app.retry_base_seconds == 2
    assert settings.app.max_attempts == 12
    assert settings.max_body_bytes == 5242880
    assert settings.app.retention_days == 30


def test_base_url_sets_key_and_path() -> None:
    settings = load_settings({"SENTRY_JIRA_BASE_URL": "https://Apps.example.com/jira/"})
    assert settings.app.base_url == "https://Apps.example.com/jira"
    assert settings.app.base_path == "/jira"
    assert settings.app.app_key == "apps.example.com.jira"


def test_several_secret_keys_and_admin_tokens_are_accepted() -> None:
    settings = load_settings(
        {
            "SENTRY_JIRA_SECRET_KEY": f"{TEST_FERNET_KEY}, {TEST_FERNET_KEY}",
            "SENTRY_JIRA_ADMIN_TOKEN": "a" * 20 + "," + "b" * 20,
        }
    )
    assert len(settings.secret_keys) == 2
    assert settings.admin_tokens == ("a" * 20, "b" * 20)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BASE_URL", "ftp://example.com"),
        ("BASE_URL", "not a url"),
        ("BASE_URL", "https://user:pw@example.com"),
        ("BASE_URL", "https://example.com/?q=1"),
        ("BASE_URL", "https://example.com:99999"),
        ("APP_KEY", "has spaces"),
        ("JWT_LEEWAY_SECONDS", "61"),
        ("JWT_LEEWAY_SECONDS", "-1"),
        ("JWT_LEEWAY_SECONDS", "soon"),
        ("JIRA_HOSTS", "https://*.atlassian.net,"),
        ("JIRA_HOSTS", "atlassian.net"),
        ("JIRA_HOSTS", "https://*.atlassian.net/path"),
        ("JIRA_HOSTS", "gopher://x.example"),
        ("JIRA_HOSTS", "https://x.example:70000"),
        ("SECRET_KEY", "not-a-fernet-key"),
        ("SECRET_KEY", f"{TEST_FERNET_KEY},short"),
        ("USE_EMAIL_SCOPE", "maybe"),
        ("HTTP_TIMEOUT_SECONDS", "0"),
        ("MAX_ATTEMPTS", "0"),
        ("MAX_BODY_BYTES", "lots"),
        ("RETENTION_DAYS", "2"),
        ("ADMIN_TOKEN", "short"),
        ("INSTALL_KEYS_URL", "keys.example.com"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({f"SENTRY_JIRA_{variable}": value})
    message = str(err.value)
    assert message.startswith(f"SENTRY_JIRA_{variable}:")
    assert "\n" not in message
    if variable in ("SECRET_KEY", "ADMIN_TOKEN"):
        assert value not in message  # a secret is never echoed back


def test_a_database_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SENTRY_JIRA_DATABASE"):
        load_settings({"SENTRY_JIRA_DATABASE": str(tmp_path)})
