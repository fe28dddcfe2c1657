"""§8.1 webhook sites, the core half (#13): base URL rules per flavor, credential shapes, and the
register use case's order (409 before Jira, Jira failures mapped) on the in-memory fakes."""

from __future__ import annotations

import pytest

from adapters.memory.clock import FixedClock
from adapters.memory.jira import MemoryJiraApi
from adapters.memory.tenants import MemoryTenantStore
from core.admin.sites import RegisterSite, check_site_base_url, register_site, webhook_url
from core.jira_webhooks.site import parse_site_id
from core.model.credentials import JiraFlavor
from core.model.errors import (
    BadRequest,
    Conflict,
    UpstreamFailed,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from core.model.host_patterns import parse_host_patterns

PATTERNS = parse_host_patterns("https://*.atlassian.net,https://jira.corp.example,https://10.1.2.3")
CLOUD, DC = JiraFlavor.CLOUD, JiraFlavor.DATA_CENTER


@pytest.mark.parametrize(("url", "flavor", "expected"), [
    ("https://acme.atlassian.net", CLOUD, "https://acme.atlassian.net"),
    ("https://ACME.atlassian.net/", CLOUD, "https://acme.atlassian.net"),
    ("https://acme.atlassian.net:443", CLOUD, "https://acme.atlassian.net"),
    ("https://jira.corp.example/jira", DC, "https://jira.corp.example/jira"),
    ("https://jira.corp.example/jira/", DC, "https://jira.corp.example/jira"),
    ("https://jira.corp.example/a/b-c_d.e~", DC, "https://jira.corp.example/a/b-c_d.e~"),
    ("https://10.1.2.3/jira", DC, "https://10.1.2.3/jira"),  # named exactly: allowed
])
def test_8_1_allowed_base_urls_are_normalised(url: str, flavor: JiraFlavor, expected: str) -> None:
    assert check_site_base_url(url, flavor, PATTERNS) == expected


@pytest.mark.parametrize(("url", "flavor"), [
    ("https://acme.atlassian.net/jira", CLOUD),    # cloud has no path
    ("https://jira.corp.example/../admin", DC),
    ("https://jira.corp.example/./x", DC),
    ("https://jira.corp.example/a%2Fb", DC),
    ("https://jira.corp.example/a b", DC),
    ("https://jira.corp.example/?x=1", DC),
    ("https://jira.corp.example/#x", DC),
    ("https://user@jira.corp.example", DC),
    ("http://jira.corp.example", DC),              # scheme not in the pattern
    ("https://10.1.2.4", DC),                      # a private address no pattern names
    ("https://evil.example", CLOUD),
    ("https://acme.atlassian.net." , CLOUD),
    ("https://" + "a" * 2100 + ".atlassian.net", CLOUD),
])
def test_8_1_refused_base_urls_are_400(url: str, flavor: JiraFlavor) -> None:
    with pytest.raises(BadRequest, match="base_url"):
        check_site_base_url(url, flavor, PATTERNS)


@pytest.mark.parametrize(("segment", "expected"), [
    ("1", 1), ("0", 0), ("9223372036854775807", 2**63 - 1),
    ("01", None), ("-1", None), ("+1", None), ("1.0", None), ("", None), ("٣", None),
    ("9223372036854775808", None), ("%31", None), ("1 ", None),
])
def test_8_1_site_ids_in_the_path(segment: str, expected: int | None) -> None:
    assert parse_site_id(segment) == expected


def test_8_1_the_webhook_url_is_under_the_configured_base_url() -> None:
    assert webhook_url("https://apps.example/sentry-jira", 7) == (
        "https://apps.example/sentry-jira/extensions/jira/webhook/7/")


def a_command(**changes: object) -> RegisterSite:
    body: dict[str, object] = {"base_url": "https://acme.atlassian.net", "flavor": "cloud",
                               "auth": {"kind": "api-token", "email": "bot@acme.example"},
                               "credential": "token-0123456789"}
    body.update(changes)
    return RegisterSite.parse(body, PATTERNS)


async def test_8_1_register_asks_jira_only_when_the_base_url_is_free() -> None:
    tenants, jira, clock = MemoryTenantStore(), MemoryJiraApi(), FixedClock()
    registered = await register_site(a_command(), tenants=tenants, jira=jira, clock=clock)
    assert [c.method for c in jira.calls] == ["myself"]
    with pytest.raises(Conflict):
        await register_site(a_command(), tenants=tenants, jira=jira, clock=clock)
    assert [c.method for c in jira.calls] == ["myself"]
    assert await tenants.list_all() == [registered.site]


@pytest.mark.parametrize("failure", [UpstreamTimeout("slow"), UpstreamRateLimited("429"),
                                     UpstreamFailed("500")])
async def test_8_1_every_jira_failure_but_a_refusal_is_unreachable(
    failure: UpstreamFailed | UpstreamTimeout | UpstreamRateLimited,
) -> None:
    tenants, jira = MemoryTenantStore(), MemoryJiraApi()
    jira.fail("myself", failure)
    with pytest.raises(UpstreamFailed) as raised:
        await register_site(a_command(), tenants=tenants, jira=jira, clock=FixedClock())
    assert type(raised.value) is UpstreamFailed  # 502, not 504 or 429
    assert await tenants.list_all() == []
