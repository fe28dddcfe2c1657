"""SENTRY_JIRA_SENTRY_HOSTS (§3.1, §8.3; issue #11 item 3): parsed once at start-up."""

from __future__ import annotations

import pytest

from adapters.config import ConfigError
from core.model.host_patterns import HostPattern
from tests.support.builders import a_settings


def test_unset_means_any_public_https_host() -> None:
    assert a_settings().app.sentry_hosts == ()


def test_patterns_are_parsed_like_the_jira_hosts() -> None:
    settings = a_settings(sentry_hosts="https://sentry.io, http://127.0.0.1:*,https://*.acme.dev")
    assert settings.app.sentry_hosts == (
        HostPattern("https", "sentry.io", None),
        HostPattern("http", "127.0.0.1", "*"),
        HostPattern("https", "*.acme.dev", None),
    )


@pytest.mark.parametrize(
    "value",
    ["sentry.io", "https://sentry.io/path", "https://sentry.io,", "ftp://x", "https://127.1",
     "https://u@sentry.io", "https://" + "a" * 64 + ".io"],
)
def test_an_invalid_pattern_is_one_line_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError) as refused:
        a_settings(sentry_hosts=value)
    assert refused.value.variable == "SENTRY_JIRA_SENTRY_HOSTS"
    assert "\n" not in str(refused.value)
