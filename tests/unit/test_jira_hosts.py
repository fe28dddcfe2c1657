"""Host patterns of SENTRY_JIRA_JIRA_HOSTS (SPEC §3.1) and the basic L2 matches."""

from __future__ import annotations

import pytest

from core.model.errors import BadRequest
from core.model.jira_hosts import HostPattern, check_jira_base_url, parse_host_patterns

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


@pytest.mark.parametrize(
    "url",
    [
        # scheme
        "http://acme.atlassian.net",
        "ftp://acme.atlassian.net",
        "acme.atlassian.net",
        "//acme.atlassian.net",
        # IP literals and numeric hosts a resolver reads as IPs
        "https://169.254.169.254",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]",
        "https://[fd00::1]",
        "https://10.0.0.1",
        "https://2130706433",
        "https://127.1",
        "https://0x7f.1",
        "https://0x7f000001",
        # other hosts, suffix and path tricks
        "https://evil.example",
        "https://x.atlassian.net.evil.example",
        "https://evil.example/.atlassian.net",
        "https://evil.example#.atlassian.net",
        "https://evil.example?.atlassian.net",
        "https://evil.example\\.atlassian.net",
        "https://acme.atlassian.net\\@evil.example",
        "https://acme%2eatlassian.net",
        "https://acme..atlassian.net",
        "https://-acme.atlassian.net",
        "https://acmeatlassian.net",
        # userinfo
        "https://user@acme.atlassian.net",
        "https://user:pw@acme.atlassian.net",
        "https://acme.atlassian.net@evil.example",
        "https://:@acme.atlassian.net",
        # query, fragment (also empty ones), path
        "https://acme.atlassian.net?",
        "https://acme.atlassian.net#",
        "https://acme.atlassian.net/#frag",
        "https://acme.atlassian.net/jira",
        "https://acme.atlassian.net//",
        "https://acme.atlassian.net/;x",
        # ports the pattern does not allow
        "https://acme.atlassian.net:8443",
        "https://acme.atlassian.net:80",
        "https://acme.atlassian.net:+443",
        "https://acme.atlassian.net:65536",
        # trailing dot, IDN and punycode look-alikes
        "https://acme.atlassian.net.",
        "https://acme.atlassian.net./",
        "https://acme.xn--atlassan-xyz.net",
        "https://xn--acm-xla.atlassian.net",
        "https://acme.xn--jira-xyz.com",
        "https://acme.аtlassian.net",
        "https://acmé.atlassian.net",
        # whitespace and control characters
        " https://acme.atlassian.net",
        "https://acme.atlassian.net\t",
        "https://acme.atlassian.net\r\nX: y",
    ],
)
def test_L2_every_listed_refusal(url: str) -> None:
    with pytest.raises(BadRequest):
        check_jira_base_url(url, DEFAULT)


def test_L2_a_punycode_label_is_accepted_only_when_a_pattern_names_it() -> None:
    named = parse_host_patterns("https://xn--acm-xla.example.com")
    assert check_jira_base_url("https://xn--acm-xla.example.com", named) == (
        "https://xn--acm-xla.example.com"
    )
    with pytest.raises(BadRequest):
        check_jira_base_url(
            "https://xn--acm-xla.example.com", parse_host_patterns("https://*.example.com")
        )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://acme.atlassian.net:", "https://acme.atlassian.net"),
        ("https://acme.atlassian.net:443/", "https://acme.atlassian.net"),
        ("HTTPS://ACME.ATLASSIAN.NET", "https://acme.atlassian.net"),
        ("https://a-b-1.atlassian.net", "https://a-b-1.atlassian.net"),
        ("https://1password.atlassian.net", "https://1password.atlassian.net"),
    ],
)
def test_L2_ordinary_spellings_still_pass(url: str, expected: str) -> None:
    assert check_jira_base_url(url, DEFAULT) == expected


def test_L2_a_port_pattern_allows_that_port_only() -> None:
    patterns = parse_host_patterns("https://*.example.com:8443")
    assert (
        check_jira_base_url("https://a.example.com:8443", patterns) == "https://a.example.com:8443"
    )
    for url in ("https://a.example.com", "https://a.example.com:9443"):
        with pytest.raises(BadRequest):
            check_jira_base_url(url, patterns)
