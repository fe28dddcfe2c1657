"""§A over HTTP: an account mapping keyed by a Data Center user key (§8.1, #13)."""

from __future__ import annotations

import pytest

from tests.support.admin_api import AdminApi


@pytest.mark.parametrize("key", ["john.smith", "JIRAUSER10100", "jane@corp.example"])
async def test_A_8_1_a_data_center_user_key_is_mapped_and_unmapped(
    api: AdminApi, key: str
) -> None:
    tenant = await api.a_bound_tenant()
    path = f"/api/tenants/{tenant.id}/orgs/acme/accounts/{key}"
    response = await api.call("PUT", path, {"sentry_user_id": "5"})
    assert response.status_code == 200, response.text
    assert response.json() == {"account_id": key, "sentry_user_id": "5"}
    mapping = await api.container.admin.accounts.get(tenant.id, "acme", key)
    assert mapping is not None and mapping.sentry_user_id == "5"
    assert (await api.call("DELETE", path)).status_code == 204
    assert await api.container.admin.accounts.get(tenant.id, "acme", key) is None


@pytest.mark.parametrize(
    ("segment", "decoded"),
    [("john%20smith", "john smith"), ("a%3Cb", "a<b"), ("a%22b", 'a"b'), ("x" * 129, "x" * 129)],
)
async def test_A_a_key_no_jira_user_can_have_is_400_and_nothing_stored(
    api: AdminApi, segment: str, decoded: str
) -> None:
    tenant = await api.a_bound_tenant()
    path = f"/api/tenants/{tenant.id}/orgs/acme/accounts/{segment}"
    response = await api.call("PUT", path, {"sentry_user_id": "5"})
    assert response.status_code == 400, response.text
    assert "account_id" in response.json()["detail"]
    assert await api.container.admin.accounts.get(tenant.id, "acme", decoded) is None
