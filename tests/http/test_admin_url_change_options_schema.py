"""§A: a stored Sentry token never follows a new URL; OPTIONS and /schema are admin routes too."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.admin_api import (
    OTHER_SENTRY_TOKEN,
    SENTRY_TOKEN,
    AdminApi,
    a_binding_body,
    admin_api_for,
)
from tests.support.builders import ADMIN_TOKEN, a_fake_container, a_settings

ADMIN_PATHS = [
    "/api/tenants",
    "/api/tenants/1",
    "/api/tenants/1/orgs/acme",
    "/api/tenants/1/orgs/acme/links/PROJ-1",
    "/api/tenants/1/orgs/acme/accounts/5b10ac8d82e05b22cc7d4ef5",
    "/api/orgs/acme/search-tokens",
    "/api/orgs/acme/search-tokens/1",
    "/api/tenants/1/journal",
    "/api/dead-letters",
    "/api/dead-letters/1/retry",
]
SCHEMA_PATHS = [
    "/schema",
    "/schema/",
    "/schema/openapi.json",
    "/schema/openapi.yaml",
    "/schema/swagger",
    "/schema/redoc",
    "/schema/elements",
    "/schema/rapidoc",
    "/schema/nothing-here",
]


@pytest.fixture
async def api_off() -> AsyncIterator[AdminApi]:
    async for value in admin_api_for(a_fake_container(a_settings())):
        yield value


# -- item 10: a new sentry_url needs a new sentry_token ----------------------------------------


async def test_A_changing_sentry_url_without_a_token_is_400_and_changes_nothing(
    api: AdminApi,
) -> None:
    tenant = await api.a_bound_tenant()
    before = await api.container.admin.bindings.get(tenant.id, "acme")
    response = await api.call(
        "PUT",
        f"/api/tenants/{tenant.id}/orgs/acme",
        {"sentry_url": "https://sentry.other.example", "sync_status": False},
    )
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert "sentry_url" in detail and "sentry_token" in detail
    assert await api.container.admin.bindings.get(tenant.id, "acme") == before


async def test_A_changing_sentry_url_with_a_token_replaces_both(api: AdminApi) -> None:
    tenant = await api.a_bound_tenant()
    response = await api.call(
        "PUT",
        f"/api/tenants/{tenant.id}/orgs/acme",
        {"sentry_url": "https://sentry.other.example", "sentry_token": OTHER_SENTRY_TOKEN},
    )
    assert response.status_code == 200, response.text
    stored = await api.container.admin.bindings.get(tenant.id, "acme")
    assert stored is not None
    assert (stored.sentry_url, stored.sentry_token) == (
        "https://sentry.other.example",
        OTHER_SENTRY_TOKEN,
    )


@pytest.mark.parametrize(
    "same_url", ["https://sentry.io", "https://sentry.io/", "HTTPS://sentry.io"]
)
async def test_A_the_same_sentry_url_without_a_token_keeps_the_token(
    api: AdminApi, same_url: str
) -> None:
    tenant = await api.a_bound_tenant()
    response = await api.call(
        "PUT",
        f"/api/tenants/{tenant.id}/orgs/acme",
        {"sentry_url": same_url, "skip_archived": True},
    )
    assert response.status_code == 200, response.text
    stored = await api.container.admin.bindings.get(tenant.id, "acme")
    assert stored is not None
    assert (stored.sentry_url, stored.sentry_token, stored.skip_archived) == (
        "https://sentry.io",
        SENTRY_TOKEN,
        True,
    )


async def test_A_creating_then_updating_without_url_keeps_url_and_token(api: AdminApi) -> None:
    tenant = await api.a_tenant()
    path = f"/api/tenants/{tenant.id}/orgs/acme"
    assert (await api.call("PUT", path, a_binding_body())).status_code == 200
    assert (await api.call("PUT", path, {"sync_assignee": False})).status_code == 200
    stored = await api.container.admin.bindings.get(tenant.id, "acme")
    assert stored is not None and stored.sentry_token == SENTRY_TOKEN


# -- item 11c: OPTIONS is an admin request --------------------------------------------------


@pytest.mark.parametrize("path", ADMIN_PATHS)
async def test_A_options_on_admin_routes_is_401_without_a_token(api: AdminApi, path: str) -> None:
    await api.a_bound_tenant()
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789abcdef"}):
        response = await api.call("OPTIONS", path, token=None, headers=headers)
        assert response.status_code == 401, (path, response.status_code, response.text)
        assert response.json()["detail"]
        assert "allow" not in response.headers


@pytest.mark.parametrize("path", ADMIN_PATHS)
async def test_A_options_on_admin_routes_is_404_when_the_api_is_off(
    api_off: AdminApi, path: str
) -> None:
    for token in (None, ADMIN_TOKEN):
        response = await api_off.call("OPTIONS", path, token=token)
        assert response.status_code == 404, (path, response.status_code)


async def test_A_options_with_the_admin_token_is_answered(api: AdminApi) -> None:
    tenant = await api.a_bound_tenant()
    response = await api.call("OPTIONS", f"/api/tenants/{tenant.id}/orgs/acme")
    assert response.status_code == 204, response.text
    assert "PUT" in response.headers["allow"]


# -- item 11d: /schema is part of the admin API ----------------------------------------------


@pytest.mark.parametrize("path", SCHEMA_PATHS)
async def test_A_schema_is_404_when_the_admin_api_is_off(api_off: AdminApi, path: str) -> None:
    for method in ("GET", "OPTIONS", "HEAD"):
        for token in (None, ADMIN_TOKEN):
            response = await api_off.call(method, path, token=token)
            assert response.status_code == 404, (method, path, token, response.status_code)


@pytest.mark.parametrize("path", SCHEMA_PATHS)
async def test_A_schema_needs_the_admin_token(api: AdminApi, path: str) -> None:
    for method in ("GET", "OPTIONS"):
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789abcdef"}):
            response = await api.call(method, path, token=None, headers=headers)
            assert response.status_code == 401, (method, path, response.status_code)
            assert "openapi" not in response.text


async def test_A_schema_is_served_with_the_admin_token(api: AdminApi) -> None:
    response = await api.call("GET", "/schema/openapi.json")
    assert response.status_code == 200, response.text
    schema = response.json()
    assert "/api/tenants" in schema["paths"]


async def test_A_the_gate_follows_the_base_path() -> None:
    settings = a_settings(admin_token=ADMIN_TOKEN, base_url="https://apps.example.com/jira")
    async for api in admin_api_for(a_fake_container(settings)):
        for method, path in (
            ("GET", "/jira/schema/openapi.json"),
            ("OPTIONS", "/jira/api/tenants"),
        ):
            assert (await api.call(method, path, token=None)).status_code == 401
        assert (await api.call("GET", "/jira/schema/openapi.json")).status_code == 200
        assert (await api.call("OPTIONS", "/jira/api/tenants")).status_code == 204
