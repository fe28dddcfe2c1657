"""Search end to end in-process: the real app from `bootstrap` (SQLite stores, the httpx Jira
adapter) against the fake Jira on loopback, which verifies every Connect token
(S1–S8, L7, outbound calls). Tenants are stored as `installed` would store them; bindings
and search tokens go through the admin API."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from adapters.http.app import create_app
from adapters.http.errors import GENERIC_UPSTREAM_DETAIL, UPSTREAM_DETAIL
from adapters.wiring import Container, bootstrap
from core.model.errors import UpstreamRefused, UpstreamTimeout
from core.model.tenant import Installation, Tenant
from tests.support.builders import ADMIN_TOKEN, a_settings
from tests.support.fake_jira import FakeJira, FakeJiraSite, RecordedRequest, Reply
from tests.support.raw_asgi import raw_request

ORG = "acme"
OTHER_ORG = "globex"
SECRET = "tenant-shared-secret-for-search-http-tests-0123456789"
TIMEOUT = 0.5
REFUSED_TEXT = "Jira refused the app's credentials; reinstall the app or check its permissions"
GENERIC_TEXT = "Something went wrong while communicating with Jira"


@attrs.define
class SearchApi:
    container: Container
    client: AsyncTestClient[Litestar]
    jira: FakeJira
    site: FakeJiraSite
    tenant: Tenant
    token: str  # a search token of ORG
    bodies: list[bytes] = attrs.Factory(list)

    async def search(
        self,
        query: str | dict[str, str],
        *,
        token: str | None = "org",
        org: str = ORG,
        tenant_id: str | int | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """GET the search route; `query` is a raw query string or parameters to encode."""
        if isinstance(query, dict):
            query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query.items())
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {self.token if token == 'org' else token}"
        tenant = self.tenant.id if tenant_id is None else tenant_id
        response = await self.client.get(
            f"/extensions/jira/search/{org}/{tenant}/?{query}", headers=sent
        )
        self.bodies.append(response.content)
        return response

    async def admin(self, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        if body is None:
            return await self.client.request(method, path, headers=headers)
        return await self.client.request(method, path, json=body, headers=headers)

    async def new_token(self, org: str) -> tuple[int, str]:
        response = await self.admin("POST", f"/api/orgs/{org}/search-tokens")
        assert response.status_code == 201, response.text
        issued = response.json()
        return issued["id"], issued["token"]

    def received(self) -> RecordedRequest:
        """The one request the fake Jira received, with a verified token."""
        (request,) = self.jira.requests
        assert request.verified, "the fake Jira refused the app's token"
        assert request.site == self.site.client_key
        return request

    def assert_nothing_sent(self) -> None:
        assert self.jira.requests == []
        assert self.jira.connections == 0


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira(a_settings().app.app_key) as server:
        yield server


@pytest.fixture
async def api(tmp_path: Path, jira: FakeJira) -> AsyncIterator[SearchApi]:
    settings = a_settings(
        tmp_path,
        jira_hosts="http://127.0.0.1:*",
        http_timeout_seconds=str(TIMEOUT),
        admin_token=ADMIN_TOKEN,
    )
    assert settings.app.app_key == jira.app_key
    container = bootstrap(settings)
    site = jira.add_site("jira-acme", SECRET)
    try:
        async with AsyncTestClient(
            app=create_app(container), base_url="http://testserver.local"
        ) as client:
            tenant = await container.tenants.upsert_installed(
                Installation(
                    client_key="jira-acme",
                    shared_secret=SECRET,
                    base_url=site.base_url,
                    display_url=None,
                    installed_at=datetime(2026, 1, 1, tzinfo=UTC),
                )
            )
            api = SearchApi(container, client, jira, site, tenant, token="")
            bound = await api.admin(
                "PUT",
                f"/api/tenants/{tenant.id}/orgs/{ORG}",
                {"sentry_url": "https://sentry.io", "sentry_token": "sntrys_never-shown-0123"},
            )
            assert bound.status_code == 200, bound.text
            _, api.token = await api.new_token(ORG)
            jira.clear()
            yield api
            for body in api.bodies:  # no secret ever comes back
                for secret in (SECRET, ADMIN_TOKEN, api.token, "sntrys_never-shown-0123"):
                    assert secret.encode() not in body
    finally:
        container.close()


# -- S3 issues: what Jira received and what came back --------------------------------------


def jql_query(jql: str) -> str:
    return f"jql={quote(jql, safe='')}&fields=summary&maxResults=20"


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("hsp-1", "HSP-1"),
        ("ABC-12", "ABC-12"),
        ("https://acme.atlassian.net/browse/abc-12?focusedCommentId=7#comment-7", "ABC-12"),
    ],
)
async def test_S3_an_issue_key_is_fetched_by_key(api: SearchApi, query: str, key: str) -> None:
    api.site.add_issue(key, "Crash on <b>start</b> &amp; exit")
    response = await api.search({"field": "externalIssue", "query": query})
    assert response.status_code == 200
    assert response.json() == [{"label": f"({key}) Crash on start & exit", "value": key}]
    assert response.headers["cache-control"] == "no-store"
    received = api.received()
    assert (received.method, received.raw_path, received.raw_query) == (
        "GET",
        f"/rest/api/3/issue/{key}",
        "fields=summary",
    )


async def test_S3_a_key_jira_does_not_know_is_an_empty_list(api: SearchApi) -> None:
    response = await api.search({"field": "parent", "query": "NOPE-404"})
    assert (response.status_code, response.json()) == (200, [])
    received = api.received()
    assert (received.raw_path, received.raw_query, received.status) == (
        "/rest/api/3/issue/NOPE-404",
        "fields=summary",
        404,
    )


@pytest.mark.parametrize(
    ("query", "jql", "raw_query"),
    [
        (
            "test",
            'text ~ "test"',
            "jql=text%20~%20%22test%22&fields=summary&maxResults=20",
        ),
        (
            "abc12",
            'text ~ "abc12"',
            "jql=text%20~%20%22abc12%22&fields=summary&maxResults=20",
        ),
        (
            'a"b',
            'text ~ "a\\"b"',
            "jql=text%20~%20%22a%5C%22b%22&fields=summary&maxResults=20",
        ),
        (
            'a\\"b',
            'text ~ "a\\\\\\"b"',
            "jql=text%20~%20%22a%5C%5C%5C%22b%22&fields=summary&maxResults=20",
        ),
        (
            '" OR project = SECRET OR text ~ "',
            'text ~ "\\" OR project = SECRET OR text ~ \\""',
            "jql=text%20~%20%22%5C%22%20OR%20project%20%3D%20SECRET%20OR%20text%20~%20%5C%22%22"
            "&fields=summary&maxResults=20",
        ),
    ],
    ids=["test", "abc12", "quote", "backslash-quote", "injection"],
)
async def test_S3_a_text_query_is_one_jql_literal(
    api: SearchApi, query: str, jql: str, raw_query: str
) -> None:
    api.site.add_issue("ABC-1", "Found <i>it</i>")
    api.site.jql_results[jql] = ["ABC-1"]
    response = await api.search({"field": "externalIssue", "query": query})
    assert response.status_code == 200
    assert response.json() == [{"label": "(ABC-1) Found it", "value": "ABC-1"}]
    received = api.received()
    assert received.raw_path == "/rest/api/3/search/jql"
    assert received.raw_query == raw_query == jql_query(jql)
    assert received.query["jql"] == [jql]


async def test_S3_form_encoded_spaces_and_plus_signs_reach_jira_as_typed(api: SearchApi) -> None:
    response = await api.search("field=externalIssue&query=null+pointer%2B%2B")
    assert response.status_code == 200
    assert api.received().query["jql"] == ['text ~ "null pointer++"']


# -- S4 users, S5 projects, S6 other fields --------------------------------------------------


def arrange_users(site: FakeJiraSite) -> None:
    site.add_user("acc-1", "Alice <b>Liddell</b>", "alice@example.com", projects=("10000",))
    site.add_user("acc-2", "Alan Hidden", None, projects=("ABC", "10000"))
    site.add_user(None, "Al Without Account", "al@example.com", projects=("ABC",))
    site.add_user("acc-3", "Mallory <img src=x onerror=alert(1)>", None)


async def test_S4_users_without_a_project(api: SearchApi) -> None:
    arrange_users(api.site)
    response = await api.search({"field": "reporter", "query": "al"})
    assert response.json() == [
        {"label": "Alice Liddell - alice@example.com", "value": "acc-1"},
        {"label": "Alan Hidden", "value": "acc-2"},
        {"label": "Mallory", "value": "acc-3"},
    ]
    received = api.received()
    assert (received.raw_path, received.raw_query) == ("/rest/api/3/user/search", "query=al")


@pytest.mark.parametrize(("project", "values"), [("ABC", ["acc-2"]), ("10000", ["acc-1", "acc-2"])])
async def test_S4_assignable_users_of_a_project(
    api: SearchApi, project: str, values: list[str]
) -> None:
    arrange_users(api.site)
    response = await api.search({"field": "assignee", "query": "al", "project": project})
    assert [user["value"] for user in response.json()] == values
    received = api.received()
    assert (received.raw_path, received.raw_query) == (
        "/rest/api/3/user/assignable/search",
        f"project={project}&query=al",
    )


async def test_S7_an_img_tag_in_a_display_name_comes_back_as_plain_text(api: SearchApi) -> None:
    arrange_users(api.site)
    response = await api.search({"field": "assignee", "query": "mallory"})
    assert response.json() == [{"label": "Mallory", "value": "acc-3"}]
    assert b"<" not in response.content


async def test_S5_projects(api: SearchApi) -> None:
    api.site.add_project("10000", "ABC", "Alpha &amp; <em>Beta</em>")
    api.site.add_project("10001", "XYZ", "Other")
    response = await api.search({"field": "project", "query": "alpha"})
    assert response.json() == [{"label": "ABC - Alpha & Beta", "value": "10000"}]
    received = api.received()
    assert (received.raw_path, received.raw_query) == ("/rest/api/3/project/search", "query=alpha")


async def test_S6_a_custom_field_is_asked_for_as_cf_with_its_digits(api: SearchApi) -> None:
    api.site.add_suggestion("cf[0123]", "Sprint 1", "<b>Sp</b>rint &amp; 1")
    response = await api.search({"field": "customfield_0123", "query": "sp"})
    assert response.json() == [{"label": "Sprint & 1", "value": "Sprint 1"}]
    received = api.received()
    assert received.raw_path == "/rest/api/2/jql/autocompletedata/suggestions"
    assert received.raw_query == "fieldName=cf%5B0123%5D&fieldValue=sp"
    assert received.query["fieldName"] == ["cf[0123]"]


async def test_S6_a_named_field_is_asked_for_by_its_name(api: SearchApi) -> None:
    api.site.add_suggestion("labels", "backend", "<b>back</b>end")
    response = await api.search({"field": "labels", "query": "back"})
    assert response.json() == [{"label": "backend", "value": "backend"}]
    assert api.received().raw_query == "fieldName=labels&fieldValue=back"


# -- S8 upstream failures ----------------------------------------------------------------------


@pytest.mark.parametrize(("retry_after", "expected"), [("12", "12"), (None, "30")])
async def test_S8_jira_429_is_429_with_its_retry_after_or_30(
    api: SearchApi, retry_after: str | None, expected: str
) -> None:
    api.site.reply("search", Reply.rate_limited(retry_after))
    response = await api.search({"field": "externalIssue", "query": "crash"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == expected
    assert "detail" in response.json()
    assert api.received().status == 429


async def test_S8_a_hung_jira_is_504_within_the_configured_timeout(api: SearchApi) -> None:
    api.site.reply("projects", Reply.hang(30))
    started = time.monotonic()
    response = await api.search({"field": "project", "query": "x"})
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.json() == {"detail": UPSTREAM_DETAIL[UpstreamTimeout]}
    assert elapsed < TIMEOUT + 5  # bounded by the timeout, far below the 30 s hang


@pytest.mark.parametrize("status", [401, 403])
async def test_S8_jira_refusing_the_credentials_is_502_with_the_S8_text(
    api: SearchApi, status: int
) -> None:
    api.site.reply("users", Reply.status_only(status))
    response = await api.search({"field": "assignee", "query": "al"})
    assert response.status_code == 502
    assert response.json() == {"detail": REFUSED_TEXT}
    assert "retry-after" not in response.headers


async def test_S8_a_token_jira_does_not_accept_is_502_with_the_S8_text(api: SearchApi) -> None:
    # The fake Jira verifies the signature for real: a rotated secret there is a real 401.
    api.site.shared_secret = "a-secret-the-app-does-not-have-0123456789"
    response = await api.search({"field": "project", "query": "x"})
    assert (response.status_code, response.json()) == (502, {"detail": REFUSED_TEXT})
    (received,) = api.jira.requests
    assert not received.verified and received.status == 401


@pytest.mark.parametrize(
    "reply",
    [
        Reply.status_only(410),
        Reply.status_only(500),
        Reply.status_only(503),
        Reply.status_only(400),
        Reply.html(),
        Reply.html(status=502),
        Reply.invalid_json(),
        Reply.json({"unexpected": "shape"}),
        Reply.redirect("http://127.0.0.1:1/elsewhere"),
    ],
    ids=["410", "500", "503", "400", "html", "html-502", "invalid-json", "shape", "redirect"],
)
async def test_S8_any_other_failure_is_502_with_the_generic_text(
    api: SearchApi, reply: Reply
) -> None:
    api.site.reply("search", reply)
    response = await api.search({"field": "externalIssue", "query": "crash"})
    assert response.status_code == 502
    assert response.json() == {"detail": GENERIC_TEXT}
    assert b"fake Jira error" not in response.content and b"html" not in response.content


async def test_S8_the_generic_text_is_the_one_in_the_error_map() -> None:
    assert GENERIC_UPSTREAM_DETAIL == GENERIC_TEXT
    assert UPSTREAM_DETAIL[UpstreamRefused] == REFUSED_TEXT


# -- S1 authentication, L7, §5 order: nothing reaches Jira for a refusal ----------------------


GOOD = {"field": "externalIssue", "query": "crash"}


async def test_S1_the_admin_token_works(api: SearchApi) -> None:
    response = await api.search(GOOD, token=ADMIN_TOKEN)
    assert (response.status_code, response.json()) == (200, [])
    assert api.received().raw_path == "/rest/api/3/search/jql"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
        {"Authorization": "JWT eyJhbGciOiJIUzI1NiJ9.e30.sig"},
    ],
    ids=["none", "wrong", "empty", "basic", "jwt"],
)
async def test_S1_no_token_or_a_wrong_one_is_401(api: SearchApi, headers: dict[str, str]) -> None:
    response = await api.search(GOOD, token=None, headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"]
    api.assert_nothing_sent()


async def test_S1_another_orgs_search_token_is_401(api: SearchApi) -> None:
    _, other = await api.new_token(OTHER_ORG)
    response = await api.search(GOOD, token=other)
    assert response.status_code == 401
    api.assert_nothing_sent()


async def test_S1_a_revoked_search_token_is_401(api: SearchApi) -> None:
    token_id, token = await api.new_token(ORG)
    assert (await api.search(GOOD, token=token)).status_code == 200
    api.jira.clear()
    assert (
        await api.admin("DELETE", f"/api/orgs/{ORG}/search-tokens/{token_id}")
    ).status_code == 204
    response = await api.search(GOOD, token=token)
    assert response.status_code == 401
    api.assert_nothing_sent()


@pytest.mark.parametrize("second", ["org", "Bearer x"])
async def test_S1_two_authorization_headers_are_401(api: SearchApi, second: str) -> None:
    """Two real headers (tests/support/raw_asgi.py; the test client would fold them into one
    comma-joined value), the org's valid search token first, and even both valid. (Review:
    the earlier form sent the admin token first through the test client: it was refused
    whatever the two-header rule did.)"""
    valid = f"Bearer {api.token}"
    status, body = await raw_request(
        api.client.app, "GET", f"/extensions/jira/search/{ORG}/{api.tenant.id}/",
        [("Authorization", valid), ("Authorization", valid if second == "org" else second)],
        query_string=b"field=project&query=x")
    assert status == 401, body
    api.assert_nothing_sent()


async def test_S1_401_comes_before_404_and_400(api: SearchApi) -> None:
    response = await api.search({"field": "x&y=1"}, token="wrong", tenant_id="not-a-number")
    assert response.status_code == 401
    api.assert_nothing_sent()


@pytest.mark.parametrize("tenant_id", ["999", "abc", "0", "01", "-1", "99999999999999999999"])
async def test_S1_an_unknown_or_non_integer_tenant_is_404(api: SearchApi, tenant_id: str) -> None:
    for token in ("org", ADMIN_TOKEN):
        response = await api.search(GOOD, token=token, tenant_id=tenant_id)
        assert response.status_code == 404, (tenant_id, response.text)
    api.assert_nothing_sent()


async def test_S1_a_tenant_not_bound_to_the_org_is_404(api: SearchApi) -> None:
    _, other = await api.new_token(OTHER_ORG)
    for token in (other, ADMIN_TOKEN):
        response = await api.search(GOOD, token=token, org=OTHER_ORG)
        assert response.status_code == 404
    api.assert_nothing_sent()


async def test_L7_an_uninstalled_tenant_is_404(api: SearchApi) -> None:
    await api.container.tenants.mark_uninstalled(api.tenant.client_key)
    for token in ("org", ADMIN_TOKEN):
        response = await api.search(GOOD, token=token)
        assert response.status_code == 404
    api.assert_nothing_sent()


async def test_S1_404_comes_before_400(api: SearchApi) -> None:
    response = await api.search("field=../", tenant_id="999")
    assert response.status_code == 404
    api.assert_nothing_sent()


@pytest.mark.parametrize(
    ("raw_query", "detail"),
    [
        ("query=crash", "field is a required parameter"),
        ("field=&query=crash", "field is a required parameter"),
        ("field=project", "query is a required parameter"),
        ("field=project&query=", "query is a required parameter"),
        ("", "field is a required parameter"),
    ],
)
async def test_S2_missing_parameters_have_the_exact_details(
    api: SearchApi, raw_query: str, detail: str
) -> None:
    response = await api.search(raw_query)
    assert (response.status_code, response.json()) == (400, {"detail": detail})
    api.assert_nothing_sent()


@pytest.mark.parametrize(
    "raw_query",
    [
        "field=x%26y%3D1&query=crash",
        "field=x&y=1&query=crash&field=project",
        "field=..%2F&query=crash",
        "field=../&query=crash",
        "field=cf%5B10010%5D&query=crash",
        "field=project&query=" + "q" * 256,
        "field=project&project=project&query=a&query=b",
        "field=assignee&query=al&project=AB-1",
        "field=assignee&query=al&project=",
        "field=project&query=a%0Ab",
    ],
    ids=[
        "ampersand",
        "repeated-field",
        "dotdot-encoded",
        "dotdot",
        "cf-brackets",
        "256-chars",
        "repeated-query",
        "bad-project",
        "empty-project",
        "newline",
    ],
)
async def test_S2_bad_parameters_are_400_and_nothing_is_sent(
    api: SearchApi, raw_query: str
) -> None:
    response = await api.search(raw_query)
    assert response.status_code == 400, response.text
    assert response.json()["detail"]
    api.assert_nothing_sent()


async def test_S2_a_query_of_255_characters_passes(api: SearchApi) -> None:
    response = await api.search({"field": "project", "query": "q" * 255})
    assert response.status_code == 200
    assert api.received().raw_query == "query=" + "q" * 255


async def test_S2_255_characters_are_counted_after_decoding(api: SearchApi) -> None:
    response = await api.search({"field": "project", "query": "é" * 255})
    assert response.status_code == 200
    assert api.received().query["query"] == ["é" * 255]


async def test_the_route_answers_without_the_trailing_slash_too(api: SearchApi) -> None:
    response = await api.client.get(
        f"/extensions/jira/search/{ORG}/{api.tenant.id}?field=project&query=x",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert response.status_code == 200


async def test_the_route_answers_only_GET(api: SearchApi) -> None:
    response = await api.client.post(
        f"/extensions/jira/search/{ORG}/{api.tenant.id}/?field=project&query=x",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert response.status_code == 405
    api.assert_nothing_sent()
