"""`/schema` works offline (#18; §A): the page is rendered by the service, loads nothing from
any other host (no script, no stylesheet or font link, no external URL at all, a CSP that
forbids loading), and describes the raw ASGI transport routes as well as the admin API. Its
access rules (admin token, 404 with the admin API off) are tested in
tests/http/test_admin_url_change_options_schema.py; the refusals are re-checked here for the
page itself."""

from __future__ import annotations

import re

import pytest

from tests.support.admin_api import AdminApi, admin_api_for
from tests.support.builders import ADMIN_TOKEN, a_fake_container, a_settings

URL = re.compile(r"""(?:https?:)?//[^\s"'<>]+""", re.IGNORECASE)
SCHEMA_PAGES = ("/schema", "/schema/", "/schema/swagger", "/schema/redoc", "/schema/elements",
                "/schema/rapidoc", "/schema/nothing-here")


def external_urls(text: str) -> list[str]:
    """Every absolute or scheme-relative URL in the text (the service's own are relative)."""
    return URL.findall(text)


async def test_A_the_schema_page_loads_nothing_from_anywhere(api: AdminApi) -> None:
    response = await api.call("GET", "/schema")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert external_urls(page) == []
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert "@import" not in page and "url(" not in page
    assert "Content-Security-Policy" in page and "default-src &#x27;none&#x27;" in page
    assert 'href="/schema/openapi.json"' in page


@pytest.mark.parametrize("path", SCHEMA_PAGES)
async def test_A_no_schema_path_names_an_external_asset(api: AdminApi, path: str) -> None:
    """Litestar's own UIs (Swagger, Redoc, Elements, RapiDoc) are not served: each loads its
    code from a CDN. Whatever a /schema path answers, it names no other host."""
    response = await api.call("GET", path)
    assert response.status_code in (200, 404), path
    assert external_urls(response.text) == [], path


async def test_A_the_page_and_json_describe_the_transport_routes(api: AdminApi) -> None:
    page = (await api.call("GET", "/schema")).text
    schema = (await api.call("GET", "/schema/openapi.json")).json()
    for path in ("/extensions/jira/issue-updated", "/extensions/jira/webhook/{site_id}"):
        assert path in schema["paths"], path
        assert "401" in schema["paths"][path]["post"]["responses"]
        assert f"<code>{path}</code>" in page
    assert "X-Hub-Signature" in page
    assert "/api/tenants" in schema["paths"] and "<code>/api/tenants</code>" in page


def test_A_the_page_escapes_what_it_shows() -> None:
    """A summary, path or parameter holding markup comes out as text, never as markup."""
    from adapters.http.schema_page import _row

    row = _row("post", "/x/<img src=//evil.example/a>", {
        "summary": "<script>alert(1)</script>", "description": '"quoted" & <b>',
        "parameters": [{"name": "<i>", "in": "header", "required": True}],
        "responses": {"200": {}}})
    assert "<script" not in row and "<img" not in row and "<b>" not in row and "<i>" not in row
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in row
    assert "&quot;quoted&quot; &amp; &lt;b&gt;" in row


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-admin-token-0123456789"}])
async def test_A_the_schema_page_needs_the_admin_token(
    api: AdminApi, headers: dict[str, str],
) -> None:
    response = await api.call("GET", "/schema", token=None, headers=headers)
    assert response.status_code == 401
    assert "<table" not in response.text and "/api/tenants" not in response.text


async def test_A_the_schema_page_is_404_with_the_admin_api_off() -> None:
    async for off in admin_api_for(a_fake_container(a_settings())):
        assert (await off.call("GET", "/schema", token=ADMIN_TOKEN)).status_code == 404


async def test_A_the_page_links_the_json_under_the_base_path() -> None:
    settings = a_settings(admin_token=ADMIN_TOKEN, base_url="https://apps.example.com/jira")
    async for api in admin_api_for(a_fake_container(settings)):
        page = (await api.call("GET", "/jira/schema")).text
        assert 'href="/jira/schema/openapi.json"' in page
        assert external_urls(page) == []
