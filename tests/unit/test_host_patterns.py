"""Host patterns: bounded hosts, a linear matcher, and the §8.3 Sentry URL rule (issue #11)."""

from __future__ import annotations

import time

import pytest

from core.model.errors import BadRequest
from core.model.host_patterns import (
    HostPattern,
    HostRefused,
    check_sentry_url,
    named_targets,
    parse_host_patterns,
)
from core.model.jira_hosts import check_jira_base_url

DEFAULT_JIRA = parse_host_patterns("https://*.atlassian.net,https://*.jira.com")
LOOPBACK = parse_host_patterns("http://127.0.0.1:*")
# 12,000 labels, 24 KB: the unsigned install body of issue #11 item 1.
LONG_HOST = "a." * 12_000 + "b"
# Generous: the quadratic matcher took 4-7 s on this host; the fix takes well under 1 ms.
GENEROUS_SECONDS = 1.0


def test_issue11_L2_a_24kb_base_url_host_is_refused_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(BadRequest):
        check_jira_base_url(f"https://{LONG_HOST}", DEFAULT_JIRA)
    assert time.monotonic() - started < GENEROUS_SECONDS


@pytest.mark.parametrize("pattern", ["https://*.atlassian.net", "https://*.*.*.atlassian.net"])
def test_issue11_the_matcher_is_linear_even_on_a_host_past_the_length_check(pattern: str) -> None:
    # The matcher itself, without the 253-character guard in front of it.
    started = time.monotonic()
    assert not HostPattern.parse(pattern).matches("https", LONG_HOST, None)
    assert HostPattern.parse(pattern).matches("https", LONG_HOST + ".atlassian.net", None)
    assert time.monotonic() - started < GENEROUS_SECONDS


def test_issue11_a_host_over_253_characters_or_a_label_over_63_is_refused() -> None:
    wildcard = parse_host_patterns("https://*.example.com")
    fits = ".".join(["a" * 63] * 3) + ".example.com"  # 63*3 + 2 + 12 = 203 characters
    assert check_jira_base_url(f"https://{fits}", wildcard) == f"https://{fits}"
    too_long = ".".join(["a" * 60] * 4) + ".example.com"  # 255 characters
    with pytest.raises(BadRequest):
        check_jira_base_url(f"https://{too_long}", wildcard)
    with pytest.raises(BadRequest):
        check_jira_base_url(f"https://{'a' * 64}.example.com", wildcard)


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("https://*.atlassian.net", "acme.atlassian.net", True),
        ("https://*.atlassian.net", "a.b.atlassian.net", True),
        ("https://*.atlassian.net", "atlassian.net", False),
        ("https://*.atlassian.net", "xn--80ak6aa92e.atlassian.net", False),
        ("https://xn--80ak6aa92e.atlassian.net", "xn--80ak6aa92e.atlassian.net", True),
        ("https://a.*.c.*", "a.b.c.d", True),
        ("https://a.*.c.*", "a.b.c", False),
        ("https://a.*.c.*", "a.c.c.c.d", True),
        ("https://*.*", "a.b", True),
        ("https://*.*", "a", False),
        ("https://*", "xn--p1ai", False),
    ],
)
def test_the_linear_matcher_keeps_the_wildcard_meaning(
    pattern: str, host: str, expected: bool
) -> None:
    assert HostPattern.parse(pattern).matches("https", host, None) is expected


def test_an_ipv6_literal_pattern_matches_the_same_address() -> None:
    pattern = HostPattern.parse("http://[::1]:*")
    assert pattern.matches("http", "::1", 8080)
    assert pattern.matches("http", "0:0::1", 8080)
    assert not pattern.matches("http", "::2", 8080)


def test_only_wildcard_free_patterns_name_targets() -> None:
    names, addresses = named_targets(
        parse_host_patterns("http://sentry.internal:9000,https://*.example.com,http://10.0.0.7")
    )
    assert names == {"sentry.internal"}
    assert {str(a) for a in addresses} == {"10.0.0.7"}


@pytest.mark.parametrize(
    "text", ["https://*.ex ample.com", "https://127.1", "https://0x7f.1", "http://[::1", "ftp://x"]
)
def test_a_bad_pattern_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        HostPattern.parse(text)


# -- §8.3: an org's Sentry URL ------------------------------------------------------------

BAD_SENTRY_SPELLINGS = [
    "http://127.0.0.1:9000",  # loopback
    "https://127.0.0.1",
    "https://10.0.0.5",  # private
    "https://192.168.1.1",
    "https://169.254.169.254",  # link-local (cloud metadata)
    "https://[fe80::1]",
    "https://0.0.0.0",  # unspecified
    "https://[::]",
    "https://[::1]",
    "https://[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
    "https://[::ffff:7f00:1]",
    "https://2130706433",  # numeric spellings of 127.0.0.1
    "https://127.1",
    "https://0x7f.1",
    "https://0177.0.0.1",
    "https://localhost",
    "https://sentry.localhost",
    "http://sentry.example.com",  # not https
]


@pytest.mark.parametrize("url", BAD_SENTRY_SPELLINGS)
def test_issue11_8_3_with_no_patterns_only_public_https_hosts_pass(url: str) -> None:
    with pytest.raises(HostRefused):
        check_sentry_url(url, ())


@pytest.mark.parametrize(
    "url", ["https://sentry.io", "https://acme.sentry.io:8443/prefix", "https://8.8.8.8"]
)
def test_8_3_with_no_patterns_a_public_https_host_passes(url: str) -> None:
    check_sentry_url(url, ())


@pytest.mark.parametrize("url", [u for u in BAD_SENTRY_SPELLINGS if "127.0.0.1" not in u])
def test_issue11_8_3_a_pattern_naming_loopback_allows_only_that_address(url: str) -> None:
    with pytest.raises(HostRefused):
        check_sentry_url(url, LOOPBACK)
    check_sentry_url("http://127.0.0.1:9000/", LOOPBACK)
    with pytest.raises(HostRefused):
        check_sentry_url("https://sentry.io", LOOPBACK)  # patterns set: only what they allow
