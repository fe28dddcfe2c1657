"""Host patterns of SENTRY_JIRA_JIRA_HOSTS (SPEC §3.1) and the basic L2 matches."""

from __future__ import annotations

import pytest

from core.errors import BadRequest
from core.jira_hosts import HostPattern, check_jira_base_url, parse_host_patterns

DEFAULT = parse_host_patterns("https://*.atlassian.net,https://*.jira.com")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://acme.atlassian.net", "https://acme.atlassian.net"),
        ("https://ACME.Atlassian.NET/", "https://acme.atlassian.net"),
        ("https://a.b.atlassian.net", "https://a.b.atlassian.net"),
        ("https://acme.atlassian.net:443", "https://acme.atlassian.net"),
        ("https://acme.jira.com", "https://acme.jira.com"),
    ],
)
def test_L2_allowed_base_urls_are_normalised(url: str, expected: str) -> None:
    assert check_jira_base_url(url, DEFAULT) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://acme.atlassian.net",
        "https://atlassian.net",
        "https://evil.example",
        "https://x.atlassian.net.evil.example",
        "https://evil.example/.atlassian.net",
        "https://acme.atlassian.net:8443",
        "https://acme.atlassian.net.",
        "https://user@acme.atlassian.net",
        "https://acme.atlassian.net/#x",
        "https://acme.atlassian.net/?x=1",
        "https://acme.atlassian.net/jira",
        "https://169.254.169.254",
        "https://127.0.0.1",
        "https://xn--acm-tma.atlassian.net.evil.example",
        "https://acmé.atlassian.net",
        "",
    ],
)
def test_L2_refused_base_urls(url: str) -> None:
    with pytest.raises(BadRequest):
        check_jira_base_url(url, DEFAULT)


def test_an_ip_literal_is_accepted_only_when_a_pattern_names_it() -> None:
    patterns = parse_host_patterns("http://127.0.0.1:*")
    assert check_jira_base_url("http://127.0.0.1:8123", patterns) == "http://127.0.0.1:8123"
    with pytest.raises(BadRequest):
        check_jira_base_url("http://127.0.0.2:8123", patterns)
    with pytest.raises(BadRequest):
        check_jira_base_url("http://127.0.0.1:8123", parse_host_patterns("http://*:*"))


def test_pattern_star_is_one_or_more_labels() -> None:
    pattern = HostPattern.parse("https://*.example.com")
    assert pattern.matches("https", "a.example.com", None)
    assert pattern.matches("https", "a.b.example.com", None)
    assert not pattern.matches("https", "example.com", None)
    assert not pattern.matches("http", "a.example.com", None)
