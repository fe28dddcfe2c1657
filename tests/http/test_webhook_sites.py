"""`/api/sites` in process: the real app from `bootstrap` (SQLite, the httpx Jira client)
against the fake Jira on loopback (#13; SPEC §8.1, §A, §5 admin order 404 → 401 → 400 → 404).

The credential is tried once with `myself` before anything is stored: refused → 400 naming the
problem, unreachable → 502, a base URL an installed site has → 409 — each with nothing stored.
No answer ever carries a credential; only registration and rotation show a webhook secret."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from adapters.http.app import create_app
from adapters.wiring import Container, bootstrap
from core.model.credentials import ApiToken, PersonalAccessToken
from core.model.tenant import Installation, TenantStatus
from tests.support.builders import ADMIN_TOKEN, a_settings
from tests.support.fake_jira import FakeJira, FakeJiraSite, Reply

EMAIL = "jira-bot@example.com"
TOKEN = "cloud-api-token-0123456789abcdef"
PAT = "data-center-pat-0123456789abcdef"
BASE = "https://sentry-jira.example.com"
SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{43,}")
TIMEOUT = 1.0


@attrs.define
class SitesApi:
    container: Container
    client: AsyncTestClient[Litestar]
    jira: FakeJira
    cloud: FakeJiraSite
    dc: FakeJiraSite
    bodies: list[bytes] = attrs.Factory(list)

    async def call(self, method: str, path: str, body: Any = None, *,
                   token: str | None = ADMIN_TOKEN, **extra: Any) -> httpx.Response:
        headers = dict(extra.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            extra["json"] = body
        response = await self.client.request(method, path, headers=headers, **extra)
        self.bodies.append(response.content)
        return response

    async def register(self, **changes: Any) -> httpx.Response:
        return await self.call("POST", "/api/sites", cloud_body(self.jira, **changes))

    async def stored(self) -> list[Any]:
        return await self.container.tenants.list_all()


def cloud_body(jira: FakeJira, **changes: Any) -> dict[str, Any]:
    body = {"base_url": jira.url, "flavor": "cloud",
            "auth": {"kind": "api-token", "email": EMAIL}, "credential": TOKEN}
    body.update(changes)
    return body


def dc_body(jira: FakeJira, **changes: Any) -> dict[str, Any]:
    body = {"base_url": jira.url + "/jira", "flavor": "data-center", "auth": {"kind": "pat"},
            "credential": PAT}
    body.update(changes)
    return body


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira(a_settings().app.app_key) as server:
        yield server


async def sites_api(tmp_path: Path, jira: FakeJira, **env: str) -> AsyncIterator[SitesApi]:
    settings = a_settings(tmp_path, jira_hosts="http://127.0.0.1:*",
                          http_timeout_seconds=str(TIMEOUT), worker="false", **env)
    container = bootstrap(settings)
    cloud = jira.add_cloud_token_site("cloud-1", EMAIL, TOKEN)
    dc = jira.add_data_center_site("dc-1", PAT, base_path="/jira")
    try:
        async with AsyncTestClient(app=create_app(container),
                                   base_url="http://testserver.local") as client:
            api = SitesApi(container, client, jira, cloud, dc)
            yield api
            for body in api.bodies:  # no credential ever comes back
                assert TOKEN.encode() not in body and PAT.encode() not in body
                assert ADMIN_TOKEN.encode() not in body
    finally:
        container.close()


@pytest.fixture
async def api(tmp_path: Path, jira: FakeJira) -> AsyncIterator[SitesApi]:
    async for value in sites_api(tmp_path, jira, admin_token=ADMIN_TOKEN):
        yield value


# -- register ---------------------------------------------------------------------------------


async def test_8_1_register_a_cloud_site(api: SitesApi) -> None:
    response = await api.register()
    assert response.status_code == 201, response.text
    created = response.json()
    site_id = created["id"]
    assert created == {"id": site_id, "transport": "webhook", "flavor": "cloud",
                       "base_url": api.jira.url,
                       "webhook_url": f"{BASE}/extensions/jira/webhook/{site_id}/",
                       "webhook_secret": created["webhook_secret"]}
    assert SECRET_SHAPE.fullmatch(created["webhook_secret"])
    assert response.headers["cache-control"] == "no-store"
    # Tried once, with the API token, on REST v3.
    assert [(r.route, r.verified, r.principal, r.raw_path) for r in api.jira.requests] == [
        ("myself", True, EMAIL, "/rest/api/3/myself")]
    (stored,) = await api.stored()
    assert stored.site_credential == ApiToken(EMAIL, TOKEN)
    assert stored.webhook_secrets.current == created["webhook_secret"]
    listed = (await api.call("GET", "/api/tenants")).json()
    shown = (await api.call("GET", f"/api/tenants/{site_id}")).json()
    assert listed == [shown]
    assert shown == {"id": site_id, "transport": "webhook", "client_key": None,
                     "base_url": api.jira.url, "display_url": None, "status": "installed",
                     "installed_at": shown["installed_at"], "orgs": [], "flavor": "cloud"}
    assert created["webhook_secret"].encode() not in b"".join(api.bodies[1:])


async def test_8_1_register_a_data_center_site_under_a_context_path(api: SitesApi) -> None:
    response = await api.call("POST", "/api/sites", dc_body(api.jira, base_url=api.jira.url
                                                            + "/jira/"))
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["flavor"], created["base_url"]) == ("data-center", api.jira.url + "/jira")
    assert [(r.route, r.verified, r.raw_path, r.headers["authorization"])
            for r in api.jira.requests] == [("myself", True, "/jira/rest/api/2/myself",
                                             f"Bearer {PAT}")]
    (stored,) = await api.stored()
    assert stored.site_credential == PersonalAccessToken(PAT)


async def test_8_1_a_refused_credential_is_400_naming_the_problem_and_stores_nothing(
    api: SitesApi,
) -> None:
    response = await api.register(credential="not-the-token-0123456789")
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert "refused" in detail and "API token" in detail
    assert "not-the-token" not in detail
    assert [(r.route, r.verified) for r in api.jira.requests] == [("myself", False)]
    response = await api.call("POST", "/api/sites", dc_body(api.jira, credential="wrong-pat"))
    assert response.status_code == 400 and "personal access token" in response.json()["detail"]
    assert await api.stored() == []


@pytest.mark.parametrize("reply", [Reply.status_only(500), Reply.html(), Reply.invalid_json(),
                                   Reply.rate_limited("5"), Reply.redirect("http://x.example/"),
                                   Reply.hang(TIMEOUT * 3)])
async def test_8_1_jira_unreachable_or_odd_is_502_and_stores_nothing(
    api: SitesApi, reply: Reply,
) -> None:
    api.cloud.reply("myself", reply)
    response = await api.register()
    assert response.status_code == 502, response.text
    assert response.json() == {"detail": "Something went wrong while communicating with Jira"}
    assert await api.stored() == []


async def test_8_1_nothing_listening_is_502(api: SitesApi) -> None:
    import socket

    with socket.socket() as closed:  # a loopback port with nothing behind it
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    response = await api.register(base_url=f"http://127.0.0.1:{port}")
    assert response.status_code == 502, response.text
    assert await api.stored() == []


async def test_8_1_a_base_url_an_installed_site_has_is_409_before_jira_is_asked(
    api: SitesApi,
) -> None:
    assert (await api.register()).status_code == 201
    api.jira.clear()
    again = await api.register()
    assert again.status_code == 409, again.text
    assert api.jira.requests == []
    connect = await api.container.tenants.upsert_installed(Installation(
        client_key="connect-1", shared_secret="s" * 40, base_url=api.jira.url + "/jira",
        display_url=None, installed_at=datetime(2026, 1, 1, tzinfo=UTC)))
    taken = await api.call("POST", "/api/sites", dc_body(api.jira))
    assert taken.status_code == 409 and api.jira.requests == []
    assert len(await api.stored()) == 2
    # Once removed, the base URL can be registered again (a new id).
    site_id = (await api.stored())[0].id
    assert (await api.call("DELETE", f"/api/sites/{site_id}")).status_code == 204
    fresh = await api.register()
    assert fresh.status_code == 201 and fresh.json()["id"] not in (site_id, connect.id)


BAD_BODIES: list[tuple[str, dict[str, Any]]] = [
    ("base_url", {"base_url": "https://evil.example.com"}),        # not an allowed host
    ("base_url", {"base_url": "http://127.0.0.1:1/jira"}),          # cloud has no path
    ("base_url", {"base_url": "http://user@127.0.0.1:1"}),
    ("base_url", {"base_url": "http://127.0.0.1:1/?q=1"}),
    ("base_url", {"base_url": 7}),
    ("flavor", {"flavor": "server"}),
    ("auth", {"auth": {"kind": "pat"}}),                            # a PAT is Data Center's
    ("auth", {"auth": {"kind": "basic", "email": EMAIL}}),
    ("auth", {"auth": {"kind": "api-token"}}),                      # no e-mail
    ("auth", {"auth": {"kind": "api-token", "email": "a:b@example.com"}}),
    ("unknown", {"auth": {"kind": "api-token", "email": EMAIL, "x": 1}}),
    ("auth", {"auth": "api-token"}),
    ("credential", {"credential": ""}),
    ("credential", {"credential": "two words"}),
    ("credential", {"credential": 12}),
    ("credential", {"credential": "x" * 5000}),
    ("unknown", {"webhook_secret": "mine"}),                        # a secret is never chosen
]


@pytest.mark.parametrize(("field", "changes"), BAD_BODIES)
async def test_8_1_bad_registrations_are_400_with_nothing_sent_or_stored(
    api: SitesApi, field: str, changes: dict[str, Any],
) -> None:
    response = await api.register(**changes)
    assert response.status_code == 400, (field, response.text)
    assert field in response.json()["detail"] or field == "unknown"
    assert api.jira.requests == [] and await api.stored() == []


async def test_8_1_data_center_flavor_takes_only_a_pat(api: SitesApi) -> None:
    response = await api.call("POST", "/api/sites", dc_body(
        api.jira, auth={"kind": "api-token", "email": EMAIL}))
    assert response.status_code == 400 and "pat" in response.json()["detail"]
    for missing in ("base_url", "flavor", "auth", "credential"):
        body = cloud_body(api.jira)
        del body[missing]
        response = await api.call("POST", "/api/sites", body)
        assert response.status_code == 400 and missing in response.json()["detail"]
    assert api.jira.requests == []


# -- order of checks (§5 admin) --------------------------------------------------------------


async def test_A_sites_routes_are_404_with_the_admin_api_off(
    tmp_path: Path, jira: FakeJira,
) -> None:
    async for api in sites_api(tmp_path, jira):
        for method, where in (("POST", "/api/sites"), ("POST", "/api/sites/1/webhook-secret"),
                              ("PUT", "/api/sites/1/credential"), ("DELETE", "/api/sites/1")):
            response = await api.call(method, where, cloud_body(jira), token="anything")
            assert response.status_code == 404, (method, where)
        assert jira.requests == []


async def test_A_sites_routes_need_the_admin_token_before_anything(api: SitesApi) -> None:
    for token in (None, "wrong-token"):
        for method, where, body in (("POST", "/api/sites", {"bad": 1}),
                                    ("POST", "/api/sites/x/webhook-secret", None),
                                    ("PUT", "/api/sites/x/credential", {"bad": 1}),
                                    ("DELETE", "/api/sites/x", None)):
            response = await api.call(method, where, body, token=token)
            assert response.status_code == 401, (method, where, token)
    not_json = await api.call("POST", "/api/sites", content=b"{}",
                              headers={"Content-Type": "text/plain"})
    assert not_json.status_code == 415
    assert api.jira.requests == [] and await api.stored() == []


# -- rotate, set credential, remove -----------------------------------------------------------


async def registered(api: SitesApi) -> dict[str, Any]:
    response = await api.register()
    assert response.status_code == 201, response.text
    api.jira.clear()
    return dict(response.json())


async def test_8_1_rotate_answers_a_new_secret_and_keeps_the_old_one_for_an_hour(
    api: SitesApi,
) -> None:
    created = await registered(api)
    response = await api.call("POST", f"/api/sites/{created['id']}/webhook-secret")
    assert response.status_code == 200, response.text
    rotated = response.json()
    assert set(rotated) == {"id", "webhook_url", "webhook_secret"}
    assert rotated["webhook_url"] == created["webhook_url"]
    assert SECRET_SHAPE.fullmatch(rotated["webhook_secret"])
    assert rotated["webhook_secret"] != created["webhook_secret"]
    assert response.headers["cache-control"] == "no-store"
    (stored,) = await api.stored()
    assert (stored.webhook_secrets.current, stored.webhook_secrets.previous) == (
        rotated["webhook_secret"], created["webhook_secret"])
    assert api.jira.requests == []  # nothing to ask Jira


async def test_8_1_set_credential_is_tried_then_stored(api: SitesApi) -> None:
    created = await registered(api)
    second = "second-api-token-0123456789abcdef"
    api.cloud.api_tokens.append(type(api.cloud.api_tokens[0])(
        "other@example.com", second, "557058:other", "Other"))
    refused = await api.call("PUT", f"/api/sites/{created['id']}/credential", {
        "auth": {"kind": "api-token", "email": "other@example.com"}, "credential": "nope-0123"})
    assert refused.status_code == 400 and "refused" in refused.json()["detail"]
    (stored,) = await api.stored()
    assert stored.site_credential == ApiToken(EMAIL, TOKEN)  # unchanged
    response = await api.call("PUT", f"/api/sites/{created['id']}/credential", {
        "auth": {"kind": "api-token", "email": "other@example.com"}, "credential": second})
    assert response.status_code == 200, response.text
    assert response.json() == {"id": created["id"], "transport": "webhook", "flavor": "cloud",
                               "base_url": api.jira.url, "status": "installed",
                               "webhook_url": created["webhook_url"]}
    (stored,) = await api.stored()
    assert stored.site_credential == ApiToken("other@example.com", second)
    assert [(r.route, r.verified) for r in api.jira.requests] == [("myself", False),
                                                                  ("myself", True)]
    assert second.encode() not in response.content
    wrong_kind = await api.call("PUT", f"/api/sites/{created['id']}/credential", {
        "auth": {"kind": "pat"}, "credential": PAT})
    assert wrong_kind.status_code == 400


async def test_8_1_remove_erases_the_secrets_and_keeps_the_site_listed(api: SitesApi) -> None:
    created = await registered(api)
    bound = await api.call("PUT", f"/api/tenants/{created['id']}/orgs/acme", {
        "sentry_url": "https://sentry.io", "sentry_token": "sntrys_kept-0123456789"})
    assert bound.status_code == 200, bound.text
    response = await api.call("DELETE", f"/api/sites/{created['id']}")
    assert response.status_code == 204
    (stored,) = await api.stored()
    assert stored.status is TenantStatus.UNINSTALLED
    assert (stored.webhook_secrets, stored.site_credential) == (None, None)
    shown = (await api.call("GET", f"/api/tenants/{created['id']}")).json()
    assert (shown["status"], shown["transport"], shown["orgs"]) == ("uninstalled", "webhook",
                                                                    ["acme"])
    assert (await api.call("DELETE", f"/api/sites/{created['id']}")).status_code == 204
    for method, where in (("POST", "/webhook-secret"), ("PUT", "/credential")):
        body = {"auth": {"kind": "api-token", "email": EMAIL}, "credential": TOKEN}
        gone = await api.call(method, f"/api/sites/{created['id']}{where}",
                              body if method == "PUT" else None)
        assert gone.status_code == 404, (method, where)
    assert api.jira.requests == []


async def test_A_unknown_ids_and_connect_tenants_are_404_non_integers_400(api: SitesApi) -> None:
    connect = await api.container.tenants.upsert_installed(Installation(
        client_key="connect-1", shared_secret="s" * 40, base_url="https://acme.atlassian.net",
        display_url=None, installed_at=datetime(2026, 1, 1, tzinfo=UTC)))
    body = {"auth": {"kind": "api-token", "email": EMAIL}, "credential": TOKEN}
    for site_id, status in ((connect.id, 404), (999, 404), ("abc", 400), ("-1", 400)):
        for method, where, sent in (("POST", "/webhook-secret", None),
                                    ("PUT", "/credential", body), ("DELETE", "", None)):
            response = await api.call(method, f"/api/sites/{site_id}{where}", sent)
            assert response.status_code == status, (site_id, method, where, response.text)
    assert await api.container.tenants.get(connect.id) == connect
    assert api.jira.requests == []


@pytest.mark.parametrize("auth", [{"kind": "basic"}, {"kind": "api-token"},
                                  {"kind": "api-token", "email": "not an e-mail"},
                                  {"kind": "pat", "email": "x@example.com"}, "pat"])
async def test_5_a_bad_credential_body_is_400_before_an_unknown_site_is_404(
    api: SitesApi, auth: object
) -> None:
    response = await api.call("PUT", "/api/sites/987654/credential",
                              {"auth": auth, "credential": "some-token-0123456789"})
    assert response.status_code == 400, response.text
    assert api.jira.requests == []
