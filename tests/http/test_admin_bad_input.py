"""§A bad input → 400 with a `detail` naming the field; nothing stored."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.admin_api import (
    SENTRY_TOKEN,
    AdminApi,
    a_binding_body,
)

# (a binding body change, a word the detail must contain)
BAD_BINDING_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"sentry_url": "ftp://sentry.io"}, "sentry_url"),
    ({"sentry_url": "sentry.io"}, "sentry_url"),
    ({"sentry_url": "/api/0"}, "sentry_url"),
    ({"sentry_url": "https://user:pw@sentry.io"}, "sentry_url"),
    ({"sentry_url": "https://sentry.io/?org=1"}, "sentry_url"),
    ({"sentry_url": "https://sentry.io/?"}, "sentry_url"),
    ({"sentry_url": "https://sentry.io/#top"}, "sentry_url"),
    ({"sentry_url": "https://sentry.io:99999"}, "sentry_url"),
    ({"sentry_url": "https://sentry .io"}, "sentry_url"),
    ({"sentry_url": "https://séntry.io"}, "sentry_url"),
    ({"sentry_url": "https:///path"}, "sentry_url"),
    ({"sentry_url": ""}, "sentry_url"),
    ({"sentry_url": 5}, "sentry_url"),
    ({"sentry_url": None}, "sentry_url"),
    ({"sentry_token": ""}, "sentry_token"),
    ({"sentry_token": "has space"}, "sentry_token"),
    ({"sentry_token": "tab\there"}, "sentry_token"),
    ({"sentry_token": "new\nline"}, "sentry_token"),
    ({"sentry_token": "nul\x00"}, "sentry_token"),
    ({"sentry_token": "ünïcode"}, "sentry_token"),
    ({"sentry_token": 12345}, "sentry_token"),
    ({"sentry_token": None}, "sentry_token"),
    ({"sentry_token": "t" * 5000}, "sentry_token"),
    ({"sync_status": "true"}, "sync_status"),
    ({"sync_status": 1}, "sync_status"),
    ({"sync_status": None}, "sync_status"),
    ({"sync_assignee": 0}, "sync_assignee"),
    ({"skip_archived": "no"}, "skip_archived"),
    ({"resolution_strategy": "resolve_later"}, "resolution_strategy"),
    ({"resolution_strategy": "RESOLVE"}, "resolution_strategy"),
    ({"resolution_strategy": 1}, "resolution_strategy"),
    ({"status_map": []}, "status_map"),
    ({"status_map": "{}"}, "status_map"),
    ({"status_map": {"PROJ": {"resolve": ["1"]}}}, "status_map"),
    ({"status_map": {"-1": {"resolve": ["1"]}}}, "status_map"),
    ({"status_map": {"10000": ["1"]}}, "status_map.10000"),
    ({"status_map": {"10000": {"resolve": "1"}}}, "status_map.10000.resolve"),
    ({"status_map": {"10000": {"resolve": [1]}}}, "status_map.10000.resolve"),
    ({"status_map": {"10000": {"unresolve": ["done"]}}}, "status_map.10000.unresolve"),
    ({"status_map": {"10000": {"resolve": ["1"], "reopen": ["2"]}}}, "status_map.10000"),
    ({"status_map": {"10000": {"resolve": ["1", "2"], "unresolve": ["2"]}}}, "both"),
    ({"sentry_url": "https://sentry.io", "colour": "blue"}, "colour"),
    ({"sync_stauts": True}, "sync_stauts"),
]


@pytest.mark.parametrize(("change", "word"), BAD_BINDING_FIELDS, ids=repr)
async def test_A_bind_refuses_a_malformed_field(
    api: AdminApi, change: dict[str, Any], word: str
) -> None:
    tenant = await api.a_tenant()
    response = await api.call(
        "PUT", f"/api/tenants/{tenant.id}/orgs/acme", a_binding_body(**change)
    )
    assert response.status_code == 400
    assert word in response.json()["detail"]
    assert SENTRY_TOKEN not in response.text
    assert await api.container.admin.bindings.get(tenant.id, "acme") is None


@pytest.mark.parametrize(("change", "word"), BAD_BINDING_FIELDS, ids=repr)
async def test_A_bind_update_refuses_a_malformed_field_and_keeps_the_binding(
    api: AdminApi, change: dict[str, Any], word: str
) -> None:
    tenant = await api.a_bound_tenant()
    before = await api.container.admin.bindings.get(tenant.id, "acme")
    response = await api.call("PUT", f"/api/tenants/{tenant.id}/orgs/acme", change)
    assert response.status_code == 400
    assert word in response.json()["detail"]
    assert await api.container.admin.bindings.get(tenant.id, "acme") == before


@pytest.mark.parametrize(
    ("raw", "word"),
    [
        (b"", "JSON"),
        (b"{not json", "JSON"),
        (b"\xff\xfe{}", "not valid"),
        (b"[]", "object"),
        (b'"text"', "object"),
        (b"null", "object"),
    ],
)
@pytest.mark.parametrize(
    "path",
    [
        "/api/tenants/{id}/orgs/acme",
        "/api/tenants/{id}/orgs/acme/links/PROJ-1",
        "/api/tenants/{id}/orgs/acme/accounts/5b10ac8d82e05b22cc7d4ef5",
    ],
)
async def test_A_a_body_that_is_not_a_json_object_is_400(
    api: AdminApi, path: str, raw: bytes, word: str
) -> None:
    tenant = await api.a_bound_tenant()
    response = await api.call("PUT", path.format(id=tenant.id), content=raw)
    assert response.status_code == 400
    assert word in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ({}, "sentry_issue_ids is required"),
        ({"sentry_issue_ids": []}, "must not be empty"),
        ({"sentry_issue_ids": "1"}, "sentry_issue_ids"),
        ({"sentry_issue_ids": [1]}, "sentry_issue_ids"),
        ({"sentry_issue_ids": ["abc"]}, "sentry_issue_ids"),
        ({"sentry_issue_ids": ["-1"]}, "sentry_issue_ids"),
        ({"sentry_issue_ids": ["01"]}, "sentry_issue_ids"),
        ({"sentry_issue_ids": [" 1"]}, "sentry_issue_ids"),
        ({"sentry_issue_ids": ["1" * 20]}, "sentry_issue_ids"),
        ({"sentry_issue_ids": [None]}, "sentry_issue_ids"),
        ({"sentry_issue_ids": [str(n) for n in range(1, 102)]}, "more than 100"),
        ({"sentry_issue_ids": ["1"], "extra": 1}, "extra"),
    ],
    ids=repr,
)
async def test_A_link_refuses_a_malformed_body(api: AdminApi, body: Any, word: str) -> None:
    tenant = await api.a_bound_tenant()
    path = f"/api/tenants/{tenant.id}/orgs/acme/links/PROJ-1"
    response = await api.call("PUT", path, body)
    assert response.status_code == 400
    assert word in response.json()["detail"]
    assert await api.container.admin.links.get(tenant.id, "acme", "PROJ-1") is None


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ({}, "sentry_user_id is required"),
        ({"sentry_user_id": 5}, "sentry_user_id"),
        ({"sentry_user_id": "user:5"}, "sentry_user_id"),
        ({"sentry_user_id": ""}, "sentry_user_id"),
        ({"sentry_user_id": None}, "sentry_user_id"),
        ({"sentry_user_id": "5", "email": "a@b.c"}, "email"),
    ],
    ids=repr,
)
async def test_A_account_mapping_refuses_a_malformed_body(
    api: AdminApi, body: Any, word: str
) -> None:
    tenant = await api.a_bound_tenant()
    path = f"/api/tenants/{tenant.id}/orgs/acme/accounts/5b10ac8d82e05b22cc7d4ef5"
    response = await api.call("PUT", path, body)
    assert response.status_code == 400
    assert word in response.json()["detail"]
    assert (
        await api.container.admin.accounts.get(tenant.id, "acme", "5b10ac8d82e05b22cc7d4ef5")
        is None
    )


# Path segments: (method, path template with {id} for a real tenant, body, detail word).
BAD_PATHS: list[tuple[str, str, Any, str]] = [
    ("GET", "/api/tenants/abc", None, "tenant id"),
    ("GET", "/api/tenants/-1", None, "tenant id"),
    ("GET", "/api/tenants/01", None, "tenant id"),
    ("GET", "/api/tenants/1.5", None, "tenant id"),
    ("GET", "/api/tenants/99999999999999999999", None, "tenant id"),
    ("PUT", "/api/tenants/x/orgs/acme", a_binding_body(), "tenant id"),
    ("PUT", "/api/tenants/{id}/orgs/Acme", a_binding_body(), "org"),
    ("PUT", "/api/tenants/{id}/orgs/-acme", a_binding_body(), "org"),
    ("PUT", "/api/tenants/{id}/orgs/ac.me", a_binding_body(), "org"),
    ("PUT", "/api/tenants/{id}/orgs/" + "a" * 51, a_binding_body(), "org"),
    ("DELETE", "/api/tenants/{id}/orgs/ACME", None, "org"),
    ("GET", "/api/tenants/{id}/orgs/a%20b", None, "org"),
    ("PUT", "/api/tenants/{id}/orgs/acme/links/proj-1", {"sentry_issue_ids": ["1"]}, "issue_key"),
    ("PUT", "/api/tenants/{id}/orgs/acme/links/PROJ1", {"sentry_issue_ids": ["1"]}, "issue_key"),
    ("PUT", "/api/tenants/{id}/orgs/acme/links/PROJ-", {"sentry_issue_ids": ["1"]}, "issue_key"),
    ("PUT", "/api/tenants/{id}/orgs/acme/links/1PROJ-1", {"sentry_issue_ids": ["1"]}, "issue_key"),
    ("GET", "/api/tenants/{id}/orgs/acme/links/PROJ-1a", None, "issue_key"),
    ("DELETE", "/api/tenants/{id}/orgs/acme/links/PR%C3%96J-1", None, "issue_key"),
    ("PUT", "/api/tenants/{id}/orgs/acme/accounts/a%20b", {"sentry_user_id": "1"}, "account_id"),
    # §8.1: `a.b` and `x@y` are Data Center user keys now (accepted); `<` and `;` are no one's.
    ("PUT", "/api/tenants/{id}/orgs/acme/accounts/a%3Cb", {"sentry_user_id": "1"}, "account_id"),
    (
        "PUT",
        "/api/tenants/{id}/orgs/acme/accounts/" + "a" * 129,
        {"sentry_user_id": "1"},
        "account_id",
    ),
    ("DELETE", "/api/tenants/{id}/orgs/acme/accounts/x%3By", None, "account_id"),
    ("POST", "/api/orgs/Acme/search-tokens", None, "org"),
    ("GET", "/api/orgs/a!/search-tokens", None, "org"),
    ("DELETE", "/api/orgs/acme/search-tokens/abc", None, "search token id"),
    ("DELETE", "/api/orgs/acme/search-tokens/-3", None, "search token id"),
    ("DELETE", "/api/orgs/ACME/search-tokens/1", None, "org"),
]


@pytest.mark.parametrize(("method", "template", "body", "word"), BAD_PATHS, ids=repr)
async def test_A_malformed_path_segments_are_400(
    api: AdminApi, method: str, template: str, body: Any, word: str
) -> None:
    tenant = await api.a_bound_tenant()
    response = await api.call(method, template.format(id=tenant.id), body)
    assert response.status_code == 400, response.text
    assert word in response.json()["detail"]
    assert await api.container.admin.bindings.orgs_by_tenant() == {tenant.id: ["acme"]}
    assert await api.container.admin.search_tokens.of_org("acme") == []
