"""§A admin routes: each operation's success, its 404s, and the masked Sentry token."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from core.model.bindings import ResolutionStrategy, StatusRule
from tests.support.admin_api import (
    OTHER_SENTRY_TOKEN,
    SENTRY_TOKEN,
    AdminApi,
    a_binding_body,
    an_installation,
    assert_no_secret_in,
)

ACCOUNT = "712020:0c2d5a34-5b8e-4f0e-9a3c-1d2e3f4a5b6c"


# -- tenants --------------------------------------------------------------------------------


async def test_A_list_tenants_shows_each_with_its_bound_orgs(api: AdminApi) -> None:
    first = await api.a_tenant("client-one")
    second = await api.a_tenant("client-two")
    await api.call("PUT", f"/api/tenants/{first.id}/orgs/zeta", a_binding_body())
    await api.call("PUT", f"/api/tenants/{first.id}/orgs/acme", a_binding_body())
    await api.container.tenants.mark_uninstalled("client-two")

    response = await api.call("GET", "/api/tenants")

    assert response.status_code == 200
    assert response.json() == [
        {
            "id": first.id,
            "transport": "connect",
            "client_key": "client-one",
            "base_url": "https://acme.atlassian.net",
            "display_url": "https://jira.acme.example",
            "status": "installed",
            "installed_at": "2026-01-02T03:04:05Z",
            "orgs": ["acme", "zeta"],
        },
        {
            "id": second.id,
            "transport": "connect",
            "client_key": "client-two",
            "base_url": "https://acme.atlassian.net",
            "display_url": "https://jira.acme.example",
            "status": "uninstalled",
            "installed_at": "2026-01-02T03:04:05Z",
            "orgs": [],
        },
    ]


async def test_A_list_tenants_is_empty_without_tenants(api: AdminApi) -> None:
    response = await api.call("GET", "/api/tenants")
    assert response.status_code == 200
    assert response.json() == []


async def test_A_show_tenant(api: AdminApi) -> None:
    tenant = await api.a_bound_tenant("acme")
    response = await api.call("GET", f"/api/tenants/{tenant.id}")
    assert response.status_code == 200
    assert response.json()["orgs"] == ["acme"]
    assert response.json()["client_key"] == "jira-client-1"
    assert "shared_secret" not in response.json()


async def test_A_show_unknown_tenant_is_404(api: AdminApi) -> None:
    response = await api.call("GET", "/api/tenants/4242")
    assert response.status_code == 404
    assert response.json() == {"detail": "no tenant 4242"}


# -- bind -----------------------------------------------------------------------------------


async def test_A_bind_creates_with_defaults_and_masks_the_token(api: AdminApi) -> None:
    tenant = await api.a_tenant()
    response = await api.call(
        "PUT",
        f"/api/tenants/{tenant.id}/orgs/acme",
        a_binding_body(sentry_url="https://sentry.io/"),
    )
    assert response.status_code == 200
    assert response.json() == {
        "tenant_id": tenant.id,
        "org": "acme",
        "sentry_url": "https://sentry.io",
        "sentry_token": "***",
        "sync_status": True,
        "sync_assignee": True,
        "resolution_strategy": "resolve",
        "skip_archived": False,
        "status_map": {},
    }
    stored = await api.container.admin.bindings.get(tenant.id, "acme")
    assert stored is not None and stored.sentry_token == SENTRY_TOKEN


async def test_A_bind_creates_with_every_field(api: AdminApi) -> None:
    tenant = await api.a_tenant()
    body = a_binding_body(
        sentry_url="https://sentry.example.com/self-hosted",
        sync_status=False,
        sync_assignee=False,
        resolution_strategy="resolve_next_release",
        skip_archived=True,
        status_map={"10000": {"resolve": ["10001", "3"], "unresolve": ["1"]}, "20": {}},
    )
    response = await api.call("PUT", f"/api/tenants/{tenant.id}/orgs/my_org-2", body)
    assert response.status_code == 200
    shown = response.json()
    assert shown["sentry_url"] == "https://sentry.example.com/self-hosted"
    assert shown["status_map"] == {
        "20": {"resolve": [], "unresolve": []},
        "10000": {"resolve": ["3", "10001"], "unresolve": ["1"]},
    }
    stored = await api.container.admin.bindings.get(tenant.id, "my_org-2")
    assert stored is not None
    assert stored.resolution_strategy is ResolutionStrategy.RESOLVE_NEXT_RELEASE
    assert (stored.sync_status, stored.sync_assignee, stored.skip_archived) == (False, False, True)
    assert stored.status_map["10000"] == StatusRule(
        resolve=frozenset({"3", "10001"}), unresolve=frozenset({"1"})
    )


async def test_A_bind_update_keeps_omitted_fields_and_the_token(api: AdminApi) -> None:
    tenant = await api.a_tenant()
    path = f"/api/tenants/{tenant.id}/orgs/acme"
    await api.call(
        "PUT", path, a_binding_body(skip_archived=True, status_map={"1": {"resolve": ["2"]}})
    )
    response = await api.call("PUT", path, {"sync_assignee": False})
    assert response.status_code == 200
    assert response.json()["sync_assignee"] is False
    assert response.json()["skip_archived"] is True
    assert response.json()["status_map"] == {"1": {"resolve": ["2"], "unresolve": []}}
    stored = await api.container.admin.bindings.get(tenant.id, "acme")
    assert stored is not None and stored.sentry_token == SENTRY_TOKEN


async def test_A_bind_update_with_a_token_replaces_it(api: AdminApi) -> None:
    tenant = await api.a_bound_tenant()
    path = f"/api/tenants/{tenant.id}/orgs/acme"
    response = await api.call("PUT", path, {"sentry_token": OTHER_SENTRY_TOKEN, "status_map": {}})
    assert response.status_code == 200
    assert response.json()["sentry_token"] == "***"
    stored = await api.container.admin.bindings.get(tenant.id, "acme")
    assert stored is not None and stored.sentry_token == OTHER_SENTRY_TOKEN


async def test_A_creating_a_binding_requires_the_sentry_token_and_url(api: AdminApi) -> None:
    tenant = await api.a_tenant()
    path = f"/api/tenants/{tenant.id}/orgs/acme"
    no_token = await api.call("PUT", path, {"sentry_url": "https://sentry.io"})
    assert no_token.status_code == 400
    assert no_token.json() == {"detail": "sentry_token is required when binding a new org"}
    no_url = await api.call("PUT", path, {"sentry_token": SENTRY_TOKEN})
    assert no_url.status_code == 400
    assert "sentry_url" in no_url.json()["detail"]
    assert await api.container.admin.bindings.get(tenant.id, "acme") is None


async def test_A_bind_to_an_unknown_tenant_is_404(api: AdminApi) -> None:
    response = await api.call("PUT", "/api/tenants/77/orgs/acme", a_binding_body())
    assert response.status_code == 404
    assert await api.container.admin.bindings.orgs_by_tenant() == {}


async def test_A_an_uninstalled_tenant_can_still_be_bound(api: AdminApi) -> None:
    tenant = await api.a_tenant()
    await api.container.tenants.mark_uninstalled(tenant.client_key)
    response = await api.call("PUT", f"/api/tenants/{tenant.id}/orgs/acme", a_binding_body())
    assert response.status_code == 200


async def test_A_show_binding_and_404_when_not_bound(api: AdminApi) -> None:
    tenant = await api.a_bound_tenant()
    shown = await api.call("GET", f"/api/tenants/{tenant.id}/orgs/acme")
    assert shown.status_code == 200 and shown.json()["sentry_token"] == "***"
    missing = await api.call("GET", f"/api/tenants/{tenant.id}/orgs/other")
    assert missing.status_code == 404
    assert (await api.call("GET", "/api/tenants/99/orgs/acme")).status_code == 404


# -- unbind ---------------------------------------------------------------------------------


async def test_A_unbind_is_204_then_404_and_takes_links_and_mappings_along(api: AdminApi) -> None:
    tenant = await api.a_bound_tenant()
    base = f"/api/tenants/{tenant.id}/orgs/acme"
    await api.call("PUT", base + "/links/PROJ-1", {"sentry_issue_ids": ["11"]})
    await api.call("PUT", base + f"/accounts/{ACCOUNT}", {"sentry_user_id": "5"})

    response = await api.call("DELETE", base)
    assert response.status_code == 204
    assert response.content == b""
    assert (await api.call("DELETE", base)).status_code == 404
    stores = api.container.admin
    assert await stores.bindings.get(tenant.id, "acme") is None
    assert await stores.links.get(tenant.id, "acme", "PROJ-1") is None
    assert await stores.accounts.get(tenant.id, "acme", ACCOUNT) is None
    # binding again starts empty
    await api.call("PUT", base, a_binding_body())
    assert (await api.call("GET", base + "/links/PROJ-1")).status_code == 404


async def test_A_unbind_of_an_unknown_tenant_is_404(api: AdminApi) -> None:
    assert (await api.call("DELETE", "/api/tenants/5/orgs/acme")).status_code == 404


# -- links ----------------------------------------------------------------------------------


async def test_A_link_put_get_replace_delete(api: AdminApi) -> None:
    tenant = await api.a_bound_tenant()
    path = f"/api/tenants/{tenant.id}/orgs/acme/links/PROJ-12"

    put = await api.call("PUT", path, {"sentry_issue_ids": ["300", "20", "20"]})
    assert put.status_code == 200
    assert put.json() == {"issue_key": "PROJ-12", "sentry_issue_ids": ["20", "300"]}
    got = await api.call("GET", path)
    assert got.status_code == 200 and got.json() == put.json()

    replaced = await api.call("PUT", path, {"sentry_issue_ids": ["4"]})
    assert replaced.json() == {"issue_key": "PROJ-12", "sentry_issue_ids": ["4"]}
    link = await api.container.admin.links.get(tenant.id, "acme", "PROJ-12")
    assert link is not None and link.sentry_issue_ids == ("4",)

    deleted = await api.call("DELETE", path)
    assert deleted.status_code == 204
    assert (await api.call("GET", path)).status_code == 404
    assert (await api.call("DELETE", path)).status_code == 404


async def test_A_link_in_an_org_that_is_not_bound_is_404(api: AdminApi) -> None:
    tenant = await api.a_bound_tenant("acme")
    path = f"/api/tenants/{tenant.id}/orgs/other/links/PROJ-1"
    response = await api.call("PUT", path, {"sentry_issue_ids": ["1"]})
    assert response.status_code == 404
    assert response.json() == {"detail": f"org other is not bound to tenant {tenant.id}"}
    assert await api.container.admin.links.get(tenant.id, "other", "PROJ-1") is None


async def test_A_link_of_an_unknown_tenant_is_404(api: AdminApi) -> None:
    for method, body in (("PUT", {"sentry_issue_ids": ["1"]}), ("GET", None), ("DELETE", None)):
        response = await api.call(method, "/api/tenants/9/orgs/acme/links/PROJ-1", body)
        assert response.status_code == 404, method


async def test_A_one_sentry_issue_may_be_linked_from_several_keys(api: AdminApi) -> None:
    tenant = await api.a_bound_tenant()
    base = f"/api/tenants/{tenant.id}/orgs/acme/links"
    await api.call("PUT", base + "/PROJ-1", {"sentry_issue_ids": ["7"]})
    await api.call("PUT", base + "/PROJ-2", {"sentry_issue_ids": ["7", "8"]})
    assert (await api.call("GET", base + "/PROJ-1")).json()["sentry_issue_ids"] == ["7"]
    assert (await api.call("GET", base + "/PROJ-2")).json()["sentry_issue_ids"] == ["7", "8"]


# -- account mappings -----------------------------------------------------------------------


async def test_A_map_replace_and_unmap_an_account(api: AdminApi) -> None:
    tenant = await api.a_bound_tenant()
    path = f"/api/tenants/{tenant.id}/orgs/acme/accounts/{ACCOUNT}"
    mapped = await api.call("PUT", path, {"sentry_user_id": "123"})
    assert mapped.status_code == 200
    assert mapped.json() == {"account_id": ACCOUNT, "sentry_user_id": "123"}
    again = await api.call("PUT", path, {"sentry_user_id": "456"})
    assert again.json()["sentry_user_id"] == "456"
    stored = await api.container.admin.accounts.get(tenant.id, "acme", ACCOUNT)
    assert stored is not None and stored.sentry_user_id == "456"

    assert (await api.call("DELETE", path)).status_code == 204
    assert await api.container.admin.accounts.get(tenant.id, "acme", ACCOUNT) is None
    assert (await api.call("DELETE", path)).status_code == 404


async def test_A_map_in_an_org_that_is_not_bound_or_unknown_tenant_is_404(api: AdminApi) -> None:
    tenant = await api.a_bound_tenant()
    body = {"sentry_user_id": "1"}
    path = f"/api/tenants/{tenant.id}/orgs/other/accounts/5b10ac8d82e05b22cc7d4ef5"
    assert (await api.call("PUT", path, body)).status_code == 404
    unknown = "/api/tenants/31/orgs/acme/accounts/5b10ac8d82e05b22cc7d4ef5"
    assert (await api.call("PUT", unknown, body)).status_code == 404
    assert (await api.call("DELETE", unknown)).status_code == 404


# -- search tokens --------------------------------------------------------------------------


async def test_A_search_token_is_shown_once_stored_hashed_and_revocable(api: AdminApi) -> None:
    created = await api.call("POST", "/api/orgs/acme/search-tokens")
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    issued = created.json()
    assert set(issued) == {"id", "token"}
    assert len(issued["token"]) >= 43
    tokens = api.container.admin.search_tokens
    assert await tokens.verify("acme", issued["token"])
    assert not await tokens.verify("other", issued["token"])

    listed = await api.call("GET", "/api/orgs/acme/search-tokens")
    assert listed.status_code == 200
    assert listed.json() == [{"id": issued["id"], "created_at": "2026-01-01T00:00:00Z"}]
    assert issued["token"] not in listed.text

    revoked = await api.call("DELETE", f"/api/orgs/acme/search-tokens/{issued['id']}")
    assert revoked.status_code == 204
    assert not await tokens.verify("acme", issued["token"])
    assert (await api.call("GET", "/api/orgs/acme/search-tokens")).json() == []


async def test_A_two_search_tokens_differ(api: AdminApi) -> None:
    first = (await api.call("POST", "/api/orgs/acme/search-tokens")).json()
    second = (await api.call("POST", "/api/orgs/acme/search-tokens")).json()
    assert first["token"] != second["token"] and first["id"] != second["id"]


async def test_A_revoking_an_unknown_or_another_orgs_token_is_404(api: AdminApi) -> None:
    issued = (await api.call("POST", "/api/orgs/acme/search-tokens")).json()
    assert (await api.call("DELETE", "/api/orgs/acme/search-tokens/999")).status_code == 404
    other = await api.call("DELETE", f"/api/orgs/other/search-tokens/{issued['id']}")
    assert other.status_code == 404
    assert await api.container.admin.search_tokens.verify("acme", issued["token"])


# -- nothing secret ever comes back ---------------------------------------------------------


async def test_A_no_response_carries_a_shared_secret_or_sentry_token(api: AdminApi) -> None:
    tenant = await api.a_bound_tenant()
    await api.container.tenants.upsert_installed(
        attrs.evolve(an_installation("second"), shared_secret="x" * 40)
    )
    for path in (
        "/api/tenants",
        f"/api/tenants/{tenant.id}",
        f"/api/tenants/{tenant.id}/orgs/acme",
    ):
        response = await api.call("GET", path)
        assert response.status_code == 200
        assert SENTRY_TOKEN not in response.text
        assert "x" * 40 not in response.text
    # the fixture's teardown scans every body of this test (and of every other) again


def test_the_secret_scan_finds_a_leak() -> None:
    with pytest.raises(AssertionError):
        assert_no_secret_in([b'{"sentry_token": "' + SENTRY_TOKEN.encode() + b'"}'], {SENTRY_TOKEN})
    assert_no_secret_in([b'{"sentry_token": "***"}'], {SENTRY_TOKEN})


async def test_an_id_beyond_sqlite_integers_is_400_not_500(tmp_path: Path) -> None:
    from litestar.testing import AsyncTestClient

    from adapters.http.app import create_app
    from adapters.wiring import bootstrap
    from tests.support.builders import ADMIN_TOKEN, a_settings

    container = bootstrap(a_settings(tmp_path, admin_token=ADMIN_TOKEN))
    try:
        async with AsyncTestClient(app=create_app(container)) as client:
            response = await client.get("/api/tenants/9999999999999999999",
                                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    finally:
        container.close()
    assert response.status_code in (400, 404)
