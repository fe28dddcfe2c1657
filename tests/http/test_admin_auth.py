"""§A / §5 admin order of checks: 404 (API off) → 401 → 400 → 404; token rotation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.admin_api import (
    SECOND_ADMIN_TOKEN,
    AdminApi,
    a_binding_body,
    admin_api_for,
)
from tests.support.builders import ADMIN_TOKEN, a_fake_container, a_settings
from tests.support.raw_asgi import raw_request

# Every admin route: (method, path, JSON body or None).
ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/api/tenants", None),
    ("GET", "/api/tenants/1", None),
    ("PUT", "/api/tenants/1/orgs/acme", a_binding_body()),
    ("GET", "/api/tenants/1/orgs/acme", None),
    ("DELETE", "/api/tenants/1/orgs/acme", None),
    ("PUT", "/api/tenants/1/orgs/acme/links/PROJ-1", {"sentry_issue_ids": ["1"]}),
    ("GET", "/api/tenants/1/orgs/acme/links/PROJ-1", None),
    ("DELETE", "/api/tenants/1/orgs/acme/links/PROJ-1", None),
    ("PUT", "/api/tenants/1/orgs/acme/accounts/5b10ac8d82e05b22cc7d4ef5", {"sentry_user_id": "7"}),
    ("DELETE", "/api/tenants/1/orgs/acme/accounts/5b10ac8d82e05b22cc7d4ef5", None),
    ("POST", "/api/orgs/acme/search-tokens", None),
    ("GET", "/api/orgs/acme/search-tokens", None),
    ("DELETE", "/api/orgs/acme/search-tokens/1", None),
]
ROUTE_IDS = [f"{method} {path}" for method, path, _ in ROUTES]


@pytest.fixture
async def api_off() -> AsyncIterator[AdminApi]:
    """No SENTRY_JIRA_ADMIN_TOKEN: the admin API is off."""
    async for value in admin_api_for(a_fake_container(a_settings())):
        yield value


@pytest.fixture
async def rotating_api() -> AsyncIterator[AdminApi]:
    settings = a_settings(admin_token=f"{ADMIN_TOKEN},{SECOND_ADMIN_TOKEN}")
    async for value in admin_api_for(a_fake_container(settings)):
        yield value


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
async def test_A_every_route_is_404_when_no_admin_token_is_configured(
    api_off: AdminApi, method: str, path: str, body: Any
) -> None:
    await api_off.a_tenant()
    for token in (ADMIN_TOKEN, None, "wrong-token-0123456789abcdef"):
        response = await api_off.call(method, path, body, token=token)
        assert response.status_code == 404, (token, response.text)
        assert "detail" in response.json()
    assert await api_off.container.admin.bindings.orgs_by_tenant() == {}


@pytest.mark.parametrize("path", ["/api", "/api/", "/api/nothing/here", "/api/tenants/1/x"])
async def test_A_unknown_api_paths_are_404_when_the_api_is_off(
    api_off: AdminApi, path: str
) -> None:
    response = await api_off.call("GET", path, token=ADMIN_TOKEN)
    assert response.status_code == 404


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
async def test_A_every_route_is_401_without_a_token(
    api: AdminApi, method: str, path: str, body: Any
) -> None:
    await api.a_bound_tenant()
    response = await api.call(method, path, body, token=None)
    assert response.status_code == 401
    assert response.json()["detail"]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {ADMIN_TOKEN}x",
        f"Bearer {ADMIN_TOKEN[:-1]}",
        "Bearer wrong-token-0123456789abcdef",
        f"Basic {ADMIN_TOKEN}",
        f"JWT {ADMIN_TOKEN}",
        "Bearer ",
        ADMIN_TOKEN,
    ],
    ids=["suffix", "prefix", "wrong", "basic", "jwt", "empty", "no-scheme"],
)
async def test_A_every_route_is_401_with_a_wrong_token(
    api: AdminApi, method: str, path: str, body: Any, authorization: str
) -> None:
    tenant = await api.a_bound_tenant()
    before = await api.container.admin.bindings.get(tenant.id, "acme")
    response = await api.call(
        method, path, body, token=None, headers={"Authorization": authorization}
    )
    assert response.status_code == 401
    assert ADMIN_TOKEN not in response.text
    # nothing changed: the binding is as it was, no link, no token issued
    assert await api.container.admin.bindings.get(tenant.id, "acme") == before
    assert await api.container.admin.links.get(tenant.id, "acme", "PROJ-1") is None
    assert await api.container.admin.search_tokens.of_org("acme") == []


@pytest.mark.parametrize("path", ["/api/tenants", "/schema", "/schema/openapi.json"])
@pytest.mark.parametrize("second", [f"Bearer {ADMIN_TOKEN}", "Bearer other"])
async def test_A_two_authorization_headers_are_401(api: AdminApi, path: str, second: str) -> None:
    """Sent as two real headers (tests/support/raw_asgi.py: the test client would fold them
    into one comma-joined value), the valid one first, even when both are valid."""
    status, body = await raw_request(api.client.app, "GET", path, [
        ("Authorization", f"Bearer {ADMIN_TOKEN}"), ("Authorization", second)])
    assert status == 401, body
    assert b"more than one Authorization header" in body


METRICS_TOKEN = "metrics-token-not-an-admin-token-0123456789"


@pytest.mark.parametrize(("method", "path", "body"),
                         [*ROUTES, ("GET", "/schema", None), ("GET", "/schema/openapi.json", None),
                          ("OPTIONS", "/api/tenants", None)],
                         ids=[*ROUTE_IDS, "GET /schema", "GET /schema/openapi.json",
                              "OPTIONS /api/tenants"])
async def test_3_A_a_metrics_token_is_not_an_admin_token(
    method: str, path: str, body: Any
) -> None:
    """§3 / §A: `SENTRY_JIRA_METRICS_TOKEN` reads /metrics and nothing else: every admin route,
    the schema and the admin preflight answer it 401, and nothing changes."""
    settings = a_settings(admin_token=ADMIN_TOKEN, metrics_token=METRICS_TOKEN, metrics="token")
    async for api in admin_api_for(a_fake_container(settings)):
        await api.a_tenant()
        assert (await api.client.get("/metrics", headers={
            "Authorization": f"Bearer {METRICS_TOKEN}"})).status_code == 200
        response = await api.call(method, path, body, token=METRICS_TOKEN)
        assert response.status_code == 401, response.text
        assert await api.container.admin.bindings.orgs_by_tenant() == {}
        assert await api.container.admin.search_tokens.of_org("acme") == []


async def test_A_the_bearer_scheme_is_case_insensitive(api: AdminApi) -> None:
    response = await api.call(
        "GET", "/api/tenants", token=None, headers={"Authorization": f"bearer {ADMIN_TOKEN}"}
    )
    assert response.status_code == 200


async def test_A_during_rotation_both_admin_tokens_are_accepted(rotating_api: AdminApi) -> None:
    tenant = await rotating_api.a_tenant()
    for token in (ADMIN_TOKEN, SECOND_ADMIN_TOKEN):
        response = await rotating_api.call("GET", f"/api/tenants/{tenant.id}", token=token)
        assert response.status_code == 200
    wrong = await rotating_api.call("GET", "/api/tenants", token=SECOND_ADMIN_TOKEN + "x")
    assert wrong.status_code == 401


async def test_A_after_rotation_the_old_token_is_refused() -> None:
    settings = a_settings(admin_token=SECOND_ADMIN_TOKEN)
    async for api_new in admin_api_for(a_fake_container(settings)):
        assert (await api_new.call("GET", "/api/tenants", token=ADMIN_TOKEN)).status_code == 401
        ok = await api_new.call("GET", "/api/tenants", token=SECOND_ADMIN_TOKEN)
        assert ok.status_code == 200


async def test_A_401_comes_before_400(api: AdminApi) -> None:
    response = await api.call(
        "PUT", "/api/tenants/abc/orgs/NOT A SLUG", content=b"{not json", token=None
    )
    assert response.status_code == 401


async def test_A_400_comes_before_404(api: AdminApi) -> None:
    # tenant 99 does not exist, but the body is refused first
    response = await api.call("PUT", "/api/tenants/99/orgs/acme", {"sync_status": "yes"})
    assert response.status_code == 400
    response = await api.call("PUT", "/api/tenants/99/orgs/Acme", a_binding_body())
    assert response.status_code == 400


async def test_A_415_after_401_for_a_body_that_is_not_declared_json(api: AdminApi) -> None:
    tenant = await api.a_tenant()
    path = f"/api/tenants/{tenant.id}/orgs/acme"
    plain = {"Content-Type": "text/plain"}
    assert (
        await api.call("PUT", path, content=b"{}", token=None, headers=plain)
    ).status_code == 401
    response = await api.call("PUT", path, content=b"{}", headers=plain)
    assert response.status_code == 415
    assert await api.container.admin.bindings.get(tenant.id, "acme") is None
