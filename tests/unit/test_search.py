"""search (S1–S8, L7) on in-memory ports: auth and lookup order, validation, field dispatch,
labels. What reached the fake Jira is `MemoryJiraApi.calls`."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import attrs
import pytest

from adapters.memory.clock import FixedClock
from adapters.memory.jira import JiraCall, MemoryJiraApi
from adapters.memory.tenants import MemoryTenantStore
from adapters.wiring import AdminStores, memory_admin_stores
from core.admin.bindings import create_search_token
from core.model.bindings import Binding
from core.model.errors import (
    BadRequest,
    NotFound,
    ServiceError,
    Unauthorized,
    UpstreamFailed,
    UpstreamRateLimited,
    UpstreamRefused,
    UpstreamTimeout,
)
from core.model.jira import JiraProject, JiraUser, JqlSuggestion
from core.model.tenant import Installation, Tenant
from core.search.plain_text import MARKUP_START, plain_text
from core.search.search import (
    FIELD_REQUIRED,
    QUERY_REQUIRED,
    SearchQuery,
    SearchRequest,
    SearchResult,
    SearchSettings,
    issue_key_in,
    jql_field_name,
    search,
    text_search_jql,
)

ADMIN = "search-admin-token-0123456789abcdef"
ORG = "acme"
OTHER_ORG = "globex"
SECRET = "tenant-secret-for-search-unit-tests-0123456789"


@attrs.define
class World:
    tenants: MemoryTenantStore
    stores: AdminStores
    jira: MemoryJiraApi
    tenant: Tenant
    token: str  # a live search token of ORG
    other_token: str  # a live search token of OTHER_ORG

    async def search(
        self,
        params: dict[str, str] | list[tuple[str, str]],
        *,
        token: str | None = None,
        authorization: tuple[str, ...] | None = None,
        org: str = ORG,
        tenant_id: str | None = None,
    ) -> list[SearchResult]:
        pairs = tuple(params.items()) if isinstance(params, dict) else tuple(params)
        if authorization is None:
            authorization = (f"Bearer {token or self.token}",)
        request = SearchRequest(
            org=org,
            tenant_id=str(self.tenant.id) if tenant_id is None else tenant_id,
            authorization=authorization,
            parameters=pairs,
        )
        return await search(
            request,
            tenants=self.tenants,
            bindings=self.stores.bindings,
            search_tokens=self.stores.search_tokens,
            jira=self.jira,
            settings=SearchSettings(admin_tokens=(ADMIN,)),
        )

    async def refused(self, kind: type[ServiceError], params: object = None, **kw: object) -> str:
        """The refusal's detail; and nothing reached Jira."""
        with pytest.raises(kind) as caught:
            default = {"field": "project", "query": "x"}
            await self.search(default if params is None else params, **kw)  # type: ignore[arg-type]
        assert self.jira.calls == []
        return caught.value.detail

    def labels(self, results: list[SearchResult]) -> list[dict[str, str]]:
        return [{"label": r.label, "value": r.value} for r in results]


async def a_world() -> World:
    tenants = MemoryTenantStore()
    stores = memory_admin_stores()
    tenant = await tenants.upsert_installed(
        Installation(
            client_key="jira-acme",
            shared_secret=SECRET,
            base_url="https://acme.atlassian.net",
            display_url=None,
            installed_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
    )
    await stores.bindings.change(
        tenant.id,
        ORG,
        lambda _: Binding(
            tenant_id=tenant.id, org=ORG, sentry_url="https://sentry.io", sentry_token="s"
        ),
    )
    clock = FixedClock()
    token = await create_search_token(ORG, search_tokens=stores.search_tokens, clock=clock)
    other = await create_search_token(OTHER_ORG, search_tokens=stores.search_tokens, clock=clock)
    return World(tenants, stores, MemoryJiraApi(), tenant, token.token, other.token)


@pytest.fixture
async def world() -> World:
    return await a_world()


# -- S1 authentication, L7, order 401 → 404 → 400 ---------------------------------------------


async def test_S1_a_search_token_of_the_org_and_the_admin_token_are_accepted(world: World) -> None:
    world.jira.site(world.tenant).projects.append(JiraProject("10000", "ABC", "Alpha"))
    for token in (world.token, ADMIN):
        assert world.labels(
            await world.search({"field": "project", "query": "ab"}, token=token)
        ) == [{"label": "ABC - Alpha", "value": "10000"}]


@pytest.mark.parametrize(
    "authorization",
    [
        (),
        ("",),
        ("Bearer",),
        ("Bearer ",),
        ("Basic c2VhcmNoOnNlY3JldA==",),
        ("JWT eyJhbGciOiJIUzI1NiJ9.e30.x",),
        ("Bearer wrong-token",),
        ("Bearer sjst_not-a-real-token",),
    ],
)
async def test_S1_missing_or_wrong_tokens_are_401(
    world: World, authorization: tuple[str, ...]
) -> None:
    await world.refused(Unauthorized, authorization=authorization)


async def test_S1_two_authorization_headers_are_401_even_if_both_are_good(world: World) -> None:
    await world.refused(Unauthorized, authorization=(f"Bearer {ADMIN}", f"Bearer {world.token}"))


async def test_S1_another_orgs_search_token_is_401(world: World) -> None:
    detail = await world.refused(Unauthorized, token=world.other_token)
    assert world.other_token not in detail


async def test_S1_a_revoked_search_token_is_401(world: World) -> None:
    [issued] = await world.stores.search_tokens.of_org(ORG)
    assert await world.stores.search_tokens.revoke(ORG, issued.id)
    await world.refused(Unauthorized)


async def test_S1_the_org_token_is_401_for_a_path_org_that_is_no_slug(world: World) -> None:
    await world.refused(Unauthorized, org="ACME")


async def test_S1_auth_comes_before_the_tenant_and_the_parameters(world: World) -> None:
    # Unknown tenant and bad parameters, bad token: 401 wins.
    await world.refused(Unauthorized, {"field": "x&y"}, token="wrong", tenant_id="999")


@pytest.mark.parametrize(
    "tenant_id", ["999", "0", "01", "-1", "1.0", "abc", "", "99999999999999999999", str(2**63)]
)
async def test_S1_unknown_or_malformed_tenant_ids_are_404(world: World, tenant_id: str) -> None:
    assert await world.refused(NotFound, tenant_id=tenant_id, token=ADMIN) == (
        "no such tenant for this org"
    )


async def test_S1_a_tenant_not_bound_to_the_org_is_404_for_its_token_and_for_the_admin(
    world: World,
) -> None:
    await world.refused(NotFound, org=OTHER_ORG, token=world.other_token)
    await world.refused(NotFound, org=OTHER_ORG, token=ADMIN)
    await world.refused(NotFound, org="Not A Slug", token=ADMIN)


async def test_L7_an_uninstalled_tenant_is_404_though_still_bound(world: World) -> None:
    await world.tenants.mark_uninstalled(world.tenant.client_key)
    assert await world.stores.bindings.get(world.tenant.id, ORG) is not None
    await world.refused(NotFound)
    await world.refused(NotFound, token=ADMIN)


async def test_S1_404_comes_before_400(world: World) -> None:
    await world.refused(NotFound, {"field": "../"}, tenant_id="999")


# -- S2 validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"query": "x"}, FIELD_REQUIRED),
        ({"field": "", "query": "x"}, FIELD_REQUIRED),
        ({"field": "project"}, QUERY_REQUIRED),
        ({"field": "project", "query": ""}, QUERY_REQUIRED),
        ({"field": "project", "query": "   "}, QUERY_REQUIRED),
        ({}, FIELD_REQUIRED),
    ],
)
async def test_S2_missing_field_or_query_have_the_exact_details(
    world: World, params: dict[str, str], detail: str
) -> None:
    assert await world.refused(BadRequest, params) == detail


@pytest.mark.parametrize(
    "field",
    [
        "x&y=1",
        "../",
        "a b",
        "1abc",
        "_abc",
        "cf[10010]",
        "a" * 65,
        "summary\n",
        "assignee-1",
        "ﬁeld",  # a ligature: not ASCII
    ],
)
async def test_S2_fields_outside_the_pattern_are_400(world: World, field: str) -> None:
    await world.refused(BadRequest, {"field": field, "query": "x"})


@pytest.mark.parametrize(
    "field",
    [
        "externalIssue",
        "parent",
        "assignee",
        "reporter",
        "project",
        "a",
        "a" * 64,
        "Sprint",
        "fix_version2",
        "customfield_10010",
        "customfield_",
        "customfield_12a",
        "customfield_" + "9" * 80,
    ],
)
def test_S2_fields_inside_the_pattern_parse(field: str) -> None:
    assert SearchQuery.parse([("field", field), ("query", "x")]).field == field


async def test_S2_a_query_of_255_characters_passes_and_256_is_400(world: World) -> None:
    await world.refused(BadRequest, {"field": "project", "query": "q" * 256})
    assert await world.search({"field": "project", "query": "é" * 255}) == []
    assert world.jira.calls == [JiraCall(world.tenant.id, "projects", ("é" * 255,))]


@pytest.mark.parametrize("query", ["a\nb", "a\x00b", "a\tb", "a\x7fb", "\x85"])
async def test_S2_control_characters_in_the_query_are_400(world: World, query: str) -> None:
    await world.refused(BadRequest, {"field": "project", "query": query})


@pytest.mark.parametrize("name", ["field", "query", "project"])
async def test_S2_a_repeated_parameter_is_400(world: World, name: str) -> None:
    params = [("field", "assignee"), ("query", "al"), ("project", "ABC"), (name, "other")]
    assert await world.refused(BadRequest, params) == f"{name} must be given once"


@pytest.mark.parametrize("project", ["", "AB-1", "../x", "1a", "_A", "A B", "ABC;", "a" * 256])
async def test_S2_project_must_be_an_id_or_key(world: World, project: str) -> None:
    await world.refused(BadRequest, {"field": "assignee", "query": "al", "project": project})


async def test_S2_unknown_parameters_are_ignored(world: World) -> None:
    assert await world.search([("field", "project"), ("query", "x"), ("_", "123")]) == []


# -- S3 issues -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("hsp-1", "HSP-1"),
        ("ABC-12", "ABC-12"),
        ("a_b9-007", "A_B9-007"),
        ("https://acme.atlassian.net/browse/ABC-12", "ABC-12"),
        ("http://jira.example.com/jira/browse/abc-12/", "ABC-12"),
        ("https://acme.atlassian.net/browse/ABC-12?focusedCommentId=1#comment-1", "ABC-12"),
        ("HTTPS://ACME.ATLASSIAN.NET/browse/ABC-12", "ABC-12"),
    ],
)
def test_S3_issue_keys_and_browse_urls_name_a_key(query: str, key: str) -> None:
    assert issue_key_in(query) == key


@pytest.mark.parametrize(
    "query",
    [
        "abc12",
        "ABC-",
        "-12",
        "1ABC-2",
        "ABC-12 crash",
        "ABC-１２",  # full-width digits are not ASCII digits
        "/browse/ABC-12",
        "acme.atlassian.net/browse/ABC-12",
        "ftp://acme.atlassian.net/browse/ABC-12",
        "javascript:alert(1)//browse/ABC-12",
        "https:///browse/ABC-12",
        "https://acme.atlassian.net/browse/ABC-12/comments",
        "https://acme.atlassian.net/browse/ABC-12//",
        "https://acme.atlassian.net/BROWSE/ABC-12",
        "https://acme.atlassian.net/projects/browse",
        "https://acme.atlassian.net/browse/ABC-12%20",
        "https://[::1/browse/ABC-12",
    ],
)
def test_S3_anything_else_is_a_text_search(query: str) -> None:
    assert issue_key_in(query) is None


@pytest.mark.parametrize(
    ("query", "jql"),
    [
        ("test", 'text ~ "test"'),
        ('a"b', 'text ~ "a\\"b"'),
        ('a\\"b', 'text ~ "a\\\\\\"b"'),
        ("a\\", 'text ~ "a\\\\"'),
        (
            '" OR project = SECRET OR text ~ "',
            'text ~ "\\" OR project = SECRET OR text ~ \\""',
        ),
        ("it's (a) [test] ~*?", 'text ~ "it\'s (a) [test] ~*?"'),
    ],
)
def test_S3_the_query_is_one_jql_string_literal(query: str, jql: str) -> None:
    assert text_search_jql(query) == jql


@pytest.mark.parametrize("field", ["externalIssue", "parent"])
async def test_S3_a_key_is_fetched_upper_cased(world: World, field: str) -> None:
    world.jira.site(world.tenant).issues["HSP-1"] = "Crash on <b>start</b> &amp; exit"
    results = await world.search({"field": field, "query": " hsp-1 "})
    assert world.labels(results) == [{"label": "(HSP-1) Crash on start & exit", "value": "HSP-1"}]
    assert world.jira.calls == [JiraCall(world.tenant.id, "get_issue", ("HSP-1",))]


async def test_S3_a_browse_url_fetches_its_key(world: World) -> None:
    world.jira.site(world.tenant).issues["ABC-12"] = "Login fails"
    url = "https://acme.atlassian.net/browse/abc-12?x=1"
    assert world.labels(await world.search({"field": "externalIssue", "query": url})) == [
        {"label": "(ABC-12) Login fails", "value": "ABC-12"}
    ]
    assert world.jira.calls == [JiraCall(world.tenant.id, "get_issue", ("ABC-12",))]


async def test_S3_a_key_jira_does_not_know_is_an_empty_list(world: World) -> None:
    assert await world.search({"field": "externalIssue", "query": "NOPE-404"}) == []
    assert world.jira.calls == [JiraCall(world.tenant.id, "get_issue", ("NOPE-404",))]


async def test_S3_a_text_query_searches_with_jql(world: World) -> None:
    site = world.jira.site(world.tenant)
    site.issues.update({"ABC-1": "First", "ABC-2": "Second <i>one</i>"})
    site.jql_results['text ~ "abc12"'] = ["ABC-2", "ABC-1"]
    results = await world.search({"field": "parent", "query": "abc12"})
    assert world.labels(results) == [
        {"label": "(ABC-2) Second one", "value": "ABC-2"},
        {"label": "(ABC-1) First", "value": "ABC-1"},
    ]
    assert world.jira.calls == [JiraCall(world.tenant.id, "search_issues", ('text ~ "abc12"', 20))]


async def test_S3_an_injection_attempt_stays_one_literal(world: World) -> None:
    query = '" OR project = SECRET OR text ~ "'
    await world.search({"field": "externalIssue", "query": query})
    assert world.jira.calls == [
        JiraCall(
            world.tenant.id,
            "search_issues",
            ('text ~ "\\" OR project = SECRET OR text ~ \\""', 20),
        )
    ]


# -- S4 users ---------------------------------------------------------------------------------


def _users(world: World) -> None:
    site = world.jira.site(world.tenant)
    site.users.extend(
        [
            JiraUser("acc-1", "Alice <b>Liddell</b>", "alice@example.com"),
            JiraUser("acc-2", "Alan Hidden", None),
            JiraUser("", "Al Without Account", "al@example.com"),
            JiraUser("acc-3", "Mallory <img src=x onerror=alert(1)>", None),
        ]
    )
    site.project_members["ABC"] = {"acc-2"}
    site.project_members["10000"] = {"acc-1", "acc-2"}


@pytest.mark.parametrize("field", ["assignee", "reporter"])
async def test_S4_users_without_a_project(world: World, field: str) -> None:
    _users(world)
    results = await world.search({"field": field, "query": "al"})
    assert world.labels(results) == [
        {"label": "Alice Liddell - alice@example.com", "value": "acc-1"},
        {"label": "Alan Hidden", "value": "acc-2"},
        {"label": "Mallory", "value": "acc-3"},  # "al" of "alert": the markup is gone
    ]  # "Al Without Account" has no accountId: skipped
    assert world.jira.calls == [JiraCall(world.tenant.id, "users", ("al",))]


@pytest.mark.parametrize(
    ("project", "expected"), [("ABC", ["acc-2"]), ("10000", ["acc-1", "acc-2"])]
)
async def test_S4_assignable_users_of_a_project_by_key_or_id(
    world: World, project: str, expected: list[str]
) -> None:
    _users(world)
    results = await world.search({"field": "assignee", "query": "al", "project": project})
    assert [r.value for r in results] == expected
    assert world.jira.calls == [JiraCall(world.tenant.id, "assignable_users", (project, "al"))]


async def test_S4_a_project_jira_does_not_know_has_no_assignable_users(world: World) -> None:
    _users(world)
    assert await world.search({"field": "assignee", "query": "al", "project": "ZZZ"}) == []


async def test_S7_markup_in_a_display_name_comes_back_as_plain_text(world: World) -> None:
    _users(world)
    results = await world.search({"field": "reporter", "query": "mallory"})
    assert world.labels(results) == [{"label": "Mallory", "value": "acc-3"}]


# -- S5 projects, S6 other fields --------------------------------------------------------------


async def test_S5_projects(world: World) -> None:
    site = world.jira.site(world.tenant)
    site.projects.extend(
        [JiraProject("10000", "ABC", "Alpha &amp; Beta"), JiraProject("10001", "XYZ", "Other")]
    )
    results = await world.search({"field": "project", "query": "a"})
    assert world.labels(results) == [{"label": "ABC - Alpha & Beta", "value": "10000"}]


@pytest.mark.parametrize(
    ("field", "sent"),
    [
        ("customfield_0123", "cf[0123]"),
        ("customfield_10010", "cf[10010]"),
        ("Sprint", "Sprint"),
        ("labels", "labels"),
        ("Customfield_1", "Customfield_1"),
    ],
)
async def test_S6_other_fields_use_jql_autocomplete(world: World, field: str, sent: str) -> None:
    world.jira.site(world.tenant).suggestions[sent] = [
        JqlSuggestion("Sprint 1", "<b>Sp</b>rint &amp; 1"),
        JqlSuggestion('"quoted" value', "quoted"),
    ]
    results = await world.search({"field": field, "query": "sp"})
    assert world.labels(results) == [{"label": "Sprint & 1", "value": "Sprint 1"}]
    assert world.jira.calls == [JiraCall(world.tenant.id, "autocomplete", (sent, "sp"))]


def test_S6_custom_field_names() -> None:
    assert jql_field_name("customfield_0123") == "cf[0123]"
    assert jql_field_name("customfield_1") == "cf[1]"
    assert jql_field_name("summary") == "summary"


# -- S8 upstream failures pass through as core errors ------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        UpstreamRateLimited("limited", retry_after=12),
        UpstreamTimeout("slow"),
        UpstreamRefused("refused"),
        UpstreamFailed("broken", status=500),
    ],
)
async def test_S8_upstream_errors_reach_the_adapter_unchanged(
    world: World, error: Exception
) -> None:
    world.jira.fail("projects", error)  # type: ignore[arg-type]
    with pytest.raises(type(error)) as caught:
        await world.search({"field": "project", "query": "a"})
    assert caught.value is error


# -- S7 plain text -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("<b>Sp</b>rint &amp; 1", "Sprint & 1"),
        ("<img src=x onerror=alert(1)>", ""),
        ("Eve <img src=x onerror=alert(1)>", "Eve"),
        ("<scr<script>ipt>alert(1)</script>", "ipt>alert(1)"),
        ("<<script>script>alert(1)<</script>/script>", "alert(1)"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;", "alert(1)"),
        ("&#60;b&#62;bold", "bold"),
        ("<!-- hidden -->shown", "shown"),
        ("<![CDATA[x]]>y", "y"),
        ("<?xml version='1.0'?>doc", "doc"),
        ("a < b", "a < b"),
        ("x<3", "x<3"),
        ("<", "<"),
        ("1 <= 2 > 0", "1 <= 2 > 0"),
        ("a<b", "ab"),  # `<b` starts a tag (unterminated): the `<` goes, the text stays
        ("&lt;", "<"),
        ("AT&T &copy; &#x2603; &unknown;", "AT&T © ☃ &unknown;"),
        ("  spaced\n\tout  ", "spaced out"),
        ("nul\x00byte\x1b", "nulbyte"),
        ("<\x00b>", ""),
        ("Plain summary", "Plain summary"),
    ],
)
def test_S7_plain_text(raw: str, text: str) -> None:
    assert plain_text(raw) == text


def test_S7_no_input_leaves_anything_a_browser_reads_as_markup() -> None:
    pieces = [
        *"<>!?/-[]&#;ab1 '\"=\x00\n",
        "<!--",
        "-->",
        "<![",
        "]]>",
        "&lt;",
        "&#60;",
        "&#x3c;",
        "<script>",
        "</script>",
        "<?",
        "<!DOCTYPE",
        "<![CDATA[",
        "<img src=x onerror=alert(1)>",
        "&gt;",
    ]
    generator = random.Random(7)
    for _ in range(20000):
        raw = "".join(generator.choice(pieces) for _ in range(generator.randint(0, 16)))
        text = plain_text(raw)
        assert not MARKUP_START.search(text), (raw, text)
        assert text == text.strip() and "  " not in text


async def test_S1_search_tokens_work_when_no_admin_token_is_configured(world: World) -> None:
    request = SearchRequest(
        org=ORG,
        tenant_id=str(world.tenant.id),
        authorization=(f"Bearer {world.token}",),
        parameters=(("field", "project"), ("query", "x")),
    )
    ports = {
        "tenants": world.tenants,
        "bindings": world.stores.bindings,
        "search_tokens": world.stores.search_tokens,
        "jira": world.jira,
    }
    assert await search(request, settings=SearchSettings(), **ports) == []  # type: ignore[arg-type]
    admin = attrs.evolve(request, authorization=(f"Bearer {ADMIN}",))
    with pytest.raises(Unauthorized):
        await search(admin, settings=SearchSettings(), **ports)  # type: ignore[arg-type]
    assert [call.method for call in world.jira.calls] == ["projects"]
