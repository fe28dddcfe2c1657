"""§10 page authentication, pure (core/connect/pages.py): page-load tokens from `?jwt=`, page
POSTs with a context token and the action token; the glance's link rule and cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import attrs
import pytest
from tests.support.builders import a_settings
from tests.support.connect_tokens import hs256_token
from tests.support.pages import ADMIN_ACCOUNT, OTHER_ACCOUNT, context_token, page_claims

from adapters.memory.clock import FixedClock
from adapters.memory.sentry import GET_ISSUE, MemorySentryApi
from adapters.memory.tenants import MemoryTenantStore
from adapters.outbound.sentry_issue_cache import CachedSentryIssues
from core.connect.pages import (
    check_action_token,
    mint_action_token,
    page_token,
    verify_page_action,
    verify_page_load,
)
from core.connect.tokens import ConnectRequest
from core.model.bindings import Binding
from core.model.errors import Forbidden, SentryUnavailable, Unauthorized
from core.model.sentry import (
    MAX_SHORT_ID_CHARS,
    MAX_STATUS_CHARS,
    MAX_TITLE_CHARS,
    SentryIssue,
)
from core.model.tenant import Installation, Tenant
from core.pages.glance import issue_url

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = a_settings().app
CLIENT = "site-client-key"
SECRET = "site-shared-secret-0123456789-abcdefghijklmnop"
PATH = "/extensions/jira/configure/"
QUERY = "xdm_e=https%3A%2F%2Facme.atlassian.net&cp=&lic=none"


async def a_site() -> tuple[MemoryTenantStore, Tenant]:
    tenants = MemoryTenantStore()
    tenant = await tenants.upsert_installed(Installation(
        client_key=CLIENT, shared_secret=SECRET, base_url="https://acme.atlassian.net",
        display_url=None, installed_at=NOW))
    return tenants, tenant


def page_load(token: str, query: str = QUERY, path: str = PATH) -> ConnectRequest:
    raw_query = f"{query}&jwt={quote(token, safe='')}" if query else f"jwt={token}"
    return ConnectRequest(method="GET", raw_path=path, raw_query=raw_query, authorization=None)


def page_post(token: str | None) -> ConnectRequest:
    return ConnectRequest(method="POST", raw_path=PATH + "orgs/acme/", raw_query="",
                          authorization=None if token is None else f"JWT {token}")


async def test_section10_a_signed_page_load_names_the_site_and_the_user() -> None:
    tenants, tenant = await a_site()
    token = hs256_token(page_claims(client_key=CLIENT, now=NOW, path=PATH, query=QUERY), SECRET)
    user = await verify_page_load(page_load(token), tenants=tenants, settings=SETTINGS,
                                  clock=FixedClock(NOW))
    assert (user.tenant.id, user.account_id) == (tenant.id, ADMIN_ACCOUNT)


@pytest.mark.parametrize("query", ["a=1", "", "xdm_e=x&jwt=&a=1"])
async def test_section10_page_token_must_be_there_once(query: str) -> None:
    with pytest.raises(Unauthorized):
        page_token(query)
    with pytest.raises(Unauthorized):
        page_token("jwt=a.b.c&jw%74=a.b.c")


async def test_section10_page_load_qsh_leaves_jwt_out_and_covers_every_other_parameter() -> None:
    tenants, _ = await a_site()
    clock = FixedClock(NOW)
    token = hs256_token(page_claims(client_key=CLIENT, now=NOW, path=PATH, query=QUERY), SECRET)
    await verify_page_load(page_load(token), tenants=tenants, settings=SETTINGS, clock=clock)
    with pytest.raises(Unauthorized, match="qsh"):
        await verify_page_load(page_load(token, query=QUERY + "&extra=1"), tenants=tenants,
                               settings=SETTINGS, clock=clock)
    with pytest.raises(Unauthorized, match="qsh"):
        await verify_page_load(page_load(token, path="/extensions/jira/issue-glance/"),
                               tenants=tenants, settings=SETTINGS, clock=clock)


async def test_section10_page_load_refuses_a_header_token_beside_the_query_token() -> None:
    tenants, _ = await a_site()
    token = hs256_token(page_claims(client_key=CLIENT, now=NOW, path=PATH, query=QUERY), SECRET)
    request = attrs.evolve(page_load(token), authorization=f"JWT {token}")
    with pytest.raises(Unauthorized):
        await verify_page_load(request, tenants=tenants, settings=SETTINGS, clock=FixedClock(NOW))


async def test_section10_page_post_needs_a_context_token_and_the_action_token() -> None:
    tenants, tenant = await a_site()
    clock = FixedClock(NOW)
    context = context_token(client_key=CLIENT, secret=SECRET, now=NOW)
    action = mint_action_token(tenant, ADMIN_ACCOUNT, NOW)
    user = await verify_page_action(page_post(context), action, tenants=tenants,
                                    settings=SETTINGS, clock=clock)
    assert user.account_id == ADMIN_ACCOUNT
    with pytest.raises(Forbidden):
        await verify_page_action(page_post(context), None, tenants=tenants, settings=SETTINGS,
                                 clock=clock)
    with pytest.raises(Unauthorized):  # the action token alone is nothing either
        await verify_page_action(page_post(None), action, tenants=tenants, settings=SETTINGS,
                                 clock=clock)
    real_qsh = hs256_token(page_claims(client_key=CLIENT, now=NOW, path=PATH + "orgs/acme/",
                                       query="", method="POST"), SECRET)
    with pytest.raises(Unauthorized, match="context"):
        await verify_page_action(page_post(real_qsh), action, tenants=tenants,
                                 settings=SETTINGS, clock=clock)


async def test_section10_action_token_is_bound_to_site_user_and_15_minutes() -> None:
    _, tenant = await a_site()
    token = mint_action_token(tenant, ADMIN_ACCOUNT, NOW)
    check_action_token(token, tenant=tenant, account_id=ADMIN_ACCOUNT,
                       now=NOW + timedelta(minutes=14, seconds=59))
    with pytest.raises(Forbidden, match="expired"):
        check_action_token(token, tenant=tenant, account_id=ADMIN_ACCOUNT,
                           now=NOW + timedelta(minutes=15))
    with pytest.raises(Forbidden, match="another user"):
        check_action_token(token, tenant=tenant, account_id=OTHER_ACCOUNT, now=NOW)
    other_site = attrs.evolve(tenant, id=tenant.id + 1)
    with pytest.raises(Forbidden):
        check_action_token(token, tenant=other_site, account_id=ADMIN_ACCOUNT, now=NOW)
    rotated = attrs.evolve(tenant, shared_secret="a-rotated-secret-0123456789-abcdefghijk")
    with pytest.raises(Forbidden):  # L4: a rotation voids every action token
        check_action_token(token, tenant=rotated, account_id=ADMIN_ACCOUNT, now=NOW)
    for garbled in ("", "x", "1.2.3", token + "x", token.replace(".", "..", 1), "é.é.é.é"):
        with pytest.raises(Forbidden):
            check_action_token(garbled, tenant=tenant, account_id=ADMIN_ACCOUNT, now=NOW)


def test_section10_glance_links_only_to_the_bindings_sentry_host() -> None:
    binding = Binding(tenant_id=1, org="acme", sentry_url="https://sentry.io", sentry_token="t")

    def url(permalink: str | None) -> str:
        return issue_url(binding, SentryIssue("42", "ACME-1", "t", "unresolved", permalink))

    built = "https://sentry.io/organizations/acme/issues/42/"
    assert url("https://acme.sentry.io/issues/42/") == "https://acme.sentry.io/issues/42/"
    assert url("https://sentry.io/organizations/acme/issues/42/") == built
    for hostile in ("javascript:alert(1)", "https://evil.example/issues/42/",
                    "https://sentry.io.evil.example/x", "https://user@sentry.io/x",
                    "data:text/html,x", None):
        assert url(hostile) == built


async def test_section10_glance_reads_are_cached_at_most_60_seconds_and_failures_never() -> None:
    clock = FixedClock(NOW)
    sentry = MemorySentryApi()
    sentry.add_org("acme", "t")
    sentry.add_issue("acme", "42", title="first")
    cache = CachedSentryIssues(sentry, clock, ttl_seconds=600)  # asked for more: capped at 60
    binding = Binding(tenant_id=1, org="acme", sentry_url="https://sentry.invalid",
                      sentry_token="t")
    assert (await cache.get_issue(binding, "42")).title == "first"
    sentry.add_issue("acme", "42", title="second")
    clock.advance(59)
    assert (await cache.get_issue(binding, "42")).title == "first"
    clock.advance(1)
    assert (await cache.get_issue(binding, "42")).title == "second"
    reads = [c for c in sentry.calls if c.operation == GET_ISSUE]
    assert len(reads) == 2
    sentry.fail(SentryUnavailable("down"), operation=GET_ISSUE)
    clock.advance(61)
    with pytest.raises(SentryUnavailable):
        await cache.get_issue(binding, "42")
    assert (await cache.get_issue(binding, "42")).title == "second"  # not a cached failure


@pytest.mark.parametrize("hostile", [
    # Browsers read `\` as `/` in http(s) URLs: the host is evil.example, not *.sentry.io.
    "https://evil.example\\.sentry.io/issues/42/",
    "https://evil.example\\@sentry.io/issues/42/",
    "https://evil.example%5c.sentry.io/issues/42/",
    "https://evil.example%2f.sentry.io/issues/42/",
    # Browsers drop tabs and newlines anywhere in a URL: no such text is trusted.
    "https://acme.sentry.io/issues/42/\n<script>",
    "https://ac\tme.sentry.io/issues/42/",
    " https://acme.sentry.io/issues/42/",
    "https://acme.sentry.io:99999/issues/42/",
    "https://acme..sentry.io/issues/42/",
    "HTTPS://acme.sentry.io\\/issues/42/",
])
def test_section10_glance_permalink_a_browser_reads_as_another_host_is_not_followed(
    hostile: str,
) -> None:
    """§10 glance link rule: a permalink whose host a browser would read differently from
    `urlsplit` (backslash, escapes, whitespace, a bad port) is never the link; the issue page
    under the binding's own Sentry URL is."""
    binding = Binding(tenant_id=1, org="acme", sentry_url="https://sentry.io", sentry_token="t")
    issue = SentryIssue("42", "ACME-1", "t", "unresolved", hostile)
    assert issue_url(binding, issue) == "https://sentry.io/organizations/acme/issues/42/"


async def test_section10_glance_cache_never_answers_a_binding_with_another_token_or_site() -> None:
    """§10 cache: an answer read with one binding's credential is never served to another
    site, another org, another Sentry URL or the same binding after its token changed."""
    clock = FixedClock(NOW)
    sentry = MemorySentryApi()
    sentry.add_org("acme", "t")
    sentry.add_issue("acme", "42", title="first")
    cache = CachedSentryIssues(sentry, clock)
    binding = Binding(tenant_id=1, org="acme", sentry_url="https://sentry.invalid",
                      sentry_token="t")
    await cache.get_issue(binding, "42")
    for other in (attrs.evolve(binding, tenant_id=2), attrs.evolve(binding, org="acme2"),
                  attrs.evolve(binding, sentry_url="https://other.invalid"),
                  attrs.evolve(binding, sentry_token="revoked-or-replaced")):
        before = len([c for c in sentry.calls if c.operation == GET_ISSUE])
        try:
            await cache.get_issue(other, "42")
        except Exception:  # the memory Sentry refuses an unknown org or token: a real read
            pass
        after = len([c for c in sentry.calls if c.operation == GET_ISSUE])
        assert after == before + 1, other


async def test_section10_an_action_token_against_a_site_without_a_secret_is_403_not_a_crash(
) -> None:
    """§10 with L5: an uninstalled site (secret erased) has no valid action token at all."""
    _, tenant = await a_site()
    token = mint_action_token(tenant, ADMIN_ACCOUNT, NOW)
    erased = attrs.evolve(tenant, shared_secret=None)
    with pytest.raises(Forbidden):
        check_action_token(token, tenant=erased, account_id=ADMIN_ACCOUNT, now=NOW)
    with pytest.raises(Forbidden):
        check_action_token(token, tenant=attrs.evolve(tenant, shared_secret=""),
                           account_id=ADMIN_ACCOUNT, now=NOW)


def test_section10_a_sentry_issue_keeps_bounded_fields_whatever_sentry_answers() -> None:
    """§10 glance / §8.3: a hostile Sentry answering megabyte titles cannot make the glance
    cache (4096 entries) hold gigabytes, nor the Jira issue view carry a megabyte panel."""
    issue = SentryIssue("42", "S" * 100_000, "T" * 1_000_000, "u" * 10_000,
                        "https://sentry.io/" + "p" * 100_000)
    assert len(issue.title) <= MAX_TITLE_CHARS and issue.title.endswith("…")
    assert len(issue.short_id) <= MAX_SHORT_ID_CHARS
    assert len(issue.status) <= MAX_STATUS_CHARS
    assert issue.permalink is None  # a cut link would point somewhere else: none at all
    plain = SentryIssue("42", "ACME-1", "A title", "unresolved", "https://sentry.io/i/42/")
    assert (plain.short_id, plain.title, plain.status, plain.permalink) == (
        "ACME-1", "A title", "unresolved", "https://sentry.io/i/42/")
