"""The admin API in-process, with every response body scanned for secrets at teardown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import attrs
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from adapters.http.app import create_app
from adapters.wiring import Container
from core.model.tenant import Installation, Tenant
from tests.support.builders import ADMIN_TOKEN, a_fake_container, a_settings

SECOND_ADMIN_TOKEN = "second-admin-token-for-rotation-98765"
SHARED_SECRET = "tenant-shared-secret-never-shown-0123456789abcdef"
SENTRY_TOKEN = "sntrys_first-sentry-token-never-shown-0123456789"
OTHER_SENTRY_TOKEN = "sntrys_second-sentry-token-never-shown-9876543210"
SENTRY_TOKENS = (SENTRY_TOKEN, OTHER_SENTRY_TOKEN)


def an_installation(client_key: str = "jira-client-1", secret: str = SHARED_SECRET) -> Installation:
    return Installation(
        client_key=client_key,
        shared_secret=secret,
        base_url="https://acme.atlassian.net",
        display_url="https://jira.acme.example",
        installed_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


def a_binding_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"sentry_url": "https://sentry.io", "sentry_token": SENTRY_TOKEN}
    body.update(changes)
    return body


def secrets_of(container: Container, tenants: list[Tenant]) -> set[str]:
    """What no admin response may carry: shared secrets, Sentry tokens, admin tokens."""
    found = {SHARED_SECRET, *SENTRY_TOKENS, *container.settings.admin_tokens}
    found |= {t.shared_secret for t in tenants if t.shared_secret}
    return found


def assert_no_secret_in(bodies: list[bytes], secrets: set[str]) -> None:
    for body in bodies:
        for secret in secrets:
            assert secret.encode() not in body, "a secret leaked into an admin response"


@attrs.define
class AdminApi:
    container: Container
    client: AsyncTestClient[Litestar]
    bodies: list[bytes] = attrs.Factory(list)
    tenants_seen: list[Tenant] = attrs.Factory(list)

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = ADMIN_TOKEN,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if token is not None:
            sent.setdefault("Authorization", f"Bearer {token}")
        if body is not None:
            response = await self.client.request(method, path, json=body, headers=sent)
        elif content is not None:
            sent.setdefault("Content-Type", "application/json")
            response = await self.client.request(method, path, content=content, headers=sent)
        else:
            response = await self.client.request(method, path, headers=sent)
        self.bodies.append(response.content)
        return response

    async def a_tenant(self, client_key: str = "jira-client-1") -> Tenant:
        tenant = await self.container.tenants.upsert_installed(
            an_installation(client_key, secret=f"{SHARED_SECRET}-{client_key}")
        )
        self.tenants_seen.append(tenant)
        return tenant

    async def a_bound_tenant(self, org: str = "acme") -> Tenant:
        tenant = await self.a_tenant()
        response = await self.call("PUT", f"/api/tenants/{tenant.id}/orgs/{org}", a_binding_body())
        assert response.status_code == 200, response.text
        return tenant


async def admin_api_for(container: Container) -> AsyncIterator[AdminApi]:
    async with AsyncTestClient(app=create_app(container), base_url="http://testserver.local") as c:
        api = AdminApi(container=container, client=c)
        yield api
    assert_no_secret_in(api.bodies, secrets_of(container, api.tenants_seen))


@pytest.fixture
async def api() -> AsyncIterator[AdminApi]:
    """The admin API on fakes, with one admin token configured."""
    settings = a_settings(admin_token=ADMIN_TOKEN)
    async for value in admin_api_for(a_fake_container(settings)):
        yield value
