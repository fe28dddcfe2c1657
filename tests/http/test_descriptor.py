"""D1/D2 over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.support.builders import ADMIN_TOKEN, a_fake_container, a_settings


@pytest.mark.parametrize("path", ["/extensions/jira/descriptor/", "/atlassian-connect.json"])
async def test_D1_descriptor_is_served_on_both_paths(
    fake_client: AsyncTestClient[Litestar], path: str
) -> None:
    response = await fake_client.get(path)
    assert response.status_code == 200
    body = response.json()
    assert body["baseUrl"] == "https://sentry-jira.example.com"
    assert body["key"] == "sentry-jira.example.com.jira"
    assert body["scopes"] == ["read"]
    assert body["modules"]["webhooks"][0]["url"] == "/extensions/jira/issue-updated/"


async def test_D1_email_scope_is_listed_when_enabled(client_for: Callable[..., Any]) -> None:
    container = a_fake_container(a_settings(use_email_scope="true"))
    async with client_for(container) as client:
        body = (await client.get("/extensions/jira/descriptor/")).json()
    assert body["scopes"] == ["read", "access_email_addresses"]


async def test_D2_host_and_forwarded_headers_do_not_change_base_url(
    fake_client: AsyncTestClient[Litestar],
) -> None:
    response = await fake_client.get(
        "/extensions/jira/descriptor/",
        headers={
            "Host": "evil.example",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "http",
            "Forwarded": "host=evil.example",
        },
    )
    assert response.status_code == 200
    assert "evil.example" not in response.text
    assert response.json()["baseUrl"] == "https://sentry-jira.example.com"


async def test_routes_live_under_the_base_url_path(client_for: Callable[..., Any]) -> None:
    container = a_fake_container(a_settings(base_url="https://apps.example.com/jira"))
    async with client_for(container) as client:
        assert (await client.get("/jira/extensions/jira/descriptor/")).status_code == 200
        assert (await client.get("/extensions/jira/descriptor/")).status_code == 404
        assert (await client.get("/jira/health")).status_code == 200


async def test_openapi_schema_is_served_to_the_admin(client_for: Callable[..., Any]) -> None:
    # §A: /schema is part of the admin API (tests/http/test_admin_url_change_options_schema.py).
    container = a_fake_container(a_settings(admin_token=ADMIN_TOKEN))
    async with client_for(container) as client:
        response = await client.get(
            "/schema/openapi.json", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
    assert response.status_code == 200
    assert "/extensions/jira/descriptor" in response.json()["paths"]
