"""The fake Jira's §8.1 sites, checked with plain httpx on loopback: a Cloud site reached with
an API token (Basic, REST v3) and a Data Center site reached with a PAT (Bearer, REST v2,
context path). Every wrong credential is refused 401 and counted; the paths answer with the
shapes Jira gives (Data Center users by `key`/`name`, never `accountId`)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from tests.support.fake_jira import FakeJira, FakeJiraSite, Reply
from tests.support.paths import fixture_json

EMAIL = "admin@example.com"
API_TOKEN = "ATATT3xFfGF0-cloud-api-token-for-tests-0123456789"
PAT = "NjQ5MzUyNTE0NzM2OkRhdGFDZW50ZXJQQVQtZm9yLXRlc3Rz"
OTHER_PAT = "OTg3NjU0MzIxMDk4OkFub3RoZXJTaXRlc1BBVC1mb3ItdGVzdHM"


def basic(email: str, token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{email}:{token}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token}


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira(app_key="com.example.sentry-jira") as server:
        yield server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    # trust_env=False: no proxy from the environment, the request stays on loopback.
    with httpx.Client(trust_env=False, timeout=5) as http:
        yield http


@pytest.fixture
def cloud(jira: FakeJira) -> FakeJiraSite:
    site = jira.add_cloud_token_site("cloud-1", EMAIL, API_TOKEN, account_id="557058:admin",
                                     display_name="Ada Admin")
    site.add_issue("APP-1", "Crash on start")
    site.jql_results['text ~ "crash"'] = ["APP-1"]
    site.add_user("557058:dee", "Dee", "dee@example.com", projects=("APP",))
    site.add_user("557058:hidden", "Hidden Person", None, projects=("APP",))
    site.add_project("10000", "APP", "Application")
    return site


@pytest.fixture
def data_center(jira: FakeJira) -> FakeJiraSite:
    site = jira.add_data_center_site("dc-1", PAT, key="JIRAUSER10000", user_name="admin",
                                     display_name="Admin", email="admin@corp.example",
                                     base_path="/jira")
    site.add_issue("OPS-7", "Disk full on worker 3")
    site.jql_results['text ~ "disk"'] = ["OPS-7"]
    site.add_data_center_user("JIRAUSER10100", "dee", "Dee", "dee@corp.example",
                              projects=("OPS",))
    site.add_data_center_user("john.smith", "john.smith", "John Smith", "john@corp.example")
    site.add_project("10100", "OPS", "Operations")
    site.add_project("10101", "APP", "Application")
    return site


# -- Cloud with an API token --------------------------------------------------------------


def test_8_1_cloud_myself_answers_the_token_owner(
    jira: FakeJira, cloud: FakeJiraSite, client: httpx.Client
) -> None:
    answer = client.get(cloud.base_url + "/rest/api/3/myself", headers=basic(EMAIL, API_TOKEN))
    assert answer.status_code == 200
    assert answer.json() == {"accountId": "557058:admin", "emailAddress": EMAIL,
                             "displayName": "Ada Admin", "active": True,
                             "accountType": "atlassian"}
    received = jira.requests[-1]
    assert (received.site, received.route, received.verified) == ("cloud-1", "myself", True)
    assert received.principal == EMAIL and received.claims is None
    assert received.headers["authorization"].startswith("Basic ")
    assert jira.refused == 0


WRONG_CLOUD = {
    "no header": {},
    "wrong token": basic(EMAIL, API_TOKEN + "x"),
    "token of another e-mail": basic("other@example.com", API_TOKEN),
    "e-mail in another case": basic(EMAIL.upper(), API_TOKEN),
    "empty token": basic(EMAIL, ""),
    "no colon": {"Authorization": "Basic " + base64.b64encode(EMAIL.encode()).decode()},
    "not base64": {"Authorization": "Basic not*base64!"},
    "token as Bearer": bearer(API_TOKEN),
    "a Connect JWT": {"Authorization": "JWT eyJhbGciOiJIUzI1NiJ9.e30.c2ln"},
    "two values": {"Authorization": basic(EMAIL, API_TOKEN)["Authorization"] + " extra"},
}


@pytest.mark.parametrize("headers", WRONG_CLOUD.values(), ids=WRONG_CLOUD.keys())
def test_8_1_cloud_refuses_a_wrong_or_missing_api_token(
    jira: FakeJira, cloud: FakeJiraSite, client: httpx.Client, headers: dict[str, str]
) -> None:
    for path in ("/rest/api/3/myself", "/rest/api/3/issue/APP-1?fields=summary"):
        assert client.get(cloud.base_url + path, headers=headers).status_code == 401
    assert jira.refused == 2
    assert all(not r.verified and r.principal is None for r in jira.requests)


def test_8_1_a_revoked_api_token_is_refused(
    jira: FakeJira, cloud: FakeJiraSite, client: httpx.Client
) -> None:
    url = cloud.base_url + "/rest/api/3/myself"
    assert client.get(url, headers=basic(EMAIL, API_TOKEN)).status_code == 200
    cloud.api_tokens.clear()
    assert client.get(url, headers=basic(EMAIL, API_TOKEN)).status_code == 401
    assert jira.refused == 1


def test_8_1_cloud_answers_the_v3_paths_with_connect_shapes(
    cloud: FakeJiraSite, client: httpx.Client
) -> None:
    def get(path: str, **params: str) -> httpx.Response:
        return client.get(cloud.base_url + path, params=params, headers=basic(EMAIL, API_TOKEN))

    issue = get("/rest/api/3/issue/APP-1", fields="summary").json()
    assert (issue["key"], issue["fields"]) == ("APP-1", {"summary": "Crash on start"})
    found = get("/rest/api/3/search/jql", jql='text ~ "crash"', fields="summary").json()
    assert [i["key"] for i in found["issues"]] == ["APP-1"] and found["isLast"] is True
    users = get("/rest/api/3/user/search", query="dee").json()
    assert [u["accountId"] for u in users] == ["557058:dee"]
    assignable = get("/rest/api/3/user/assignable/search", project="APP", query="").json()
    assert {u["accountId"] for u in assignable} == {"557058:dee", "557058:hidden"}
    projects = get("/rest/api/3/project/search", query="app").json()
    assert projects["values"] == [{"id": "10000", "key": "APP", "name": "Application"}]
    assert get("/rest/api/2/status").json() == fixture_json("jira-status-list.json")


def test_8_1_cloud_user_by_account_id_shows_the_e_mail_only_when_visible(
    cloud: FakeJiraSite, client: httpx.Client
) -> None:
    def user(account_id: str | None) -> httpx.Response:
        params = {} if account_id is None else {"accountId": account_id}
        return client.get(cloud.base_url + "/rest/api/3/user", params=params,
                          headers=basic(EMAIL, API_TOKEN))

    assert user("557058:dee").json()["emailAddress"] == "dee@example.com"
    hidden = user("557058:hidden").json()
    assert hidden["accountId"] == "557058:hidden" and "emailAddress" not in hidden
    assert user("557058:nobody").status_code == 404
    assert user(None).status_code == 400


def test_8_1_cloud_token_sites_cannot_read_user_email(
    cloud: FakeJiraSite, client: httpx.Client
) -> None:
    cloud.emails["557058:hidden"] = "hidden@example.com"
    answer = client.get(cloud.base_url + "/rest/api/3/user/email",
                        params={"accountId": "557058:hidden"}, headers=basic(EMAIL, API_TOKEN))
    assert answer.status_code == 403  # apps only
    assert "hidden@example.com" not in answer.text


def test_8_1_a_connect_site_still_wants_a_jwt_and_has_no_myself(
    jira: FakeJira, client: httpx.Client
) -> None:
    site = jira.add_site("connect-1", "connect-shared-secret-0123456789abcdef")
    answer = client.get(site.base_url + "/rest/api/3/issue/APP-1?fields=summary",
                        headers=basic(EMAIL, API_TOKEN))
    assert answer.status_code == 401 and jira.refused == 1
    assert site._route("/rest/api/3/myself") is None
    assert site._route("/rest/api/3/user") is None


# -- Data Center with a PAT ---------------------------------------------------------------


def test_8_1_data_center_myself_answers_the_pat_owner_under_the_context_path(
    jira: FakeJira, data_center: FakeJiraSite, client: httpx.Client
) -> None:
    assert data_center.base_url.endswith("/jira") and data_center.flavor == "data-center"
    answer = client.get(data_center.base_url + "/rest/api/2/myself", headers=bearer(PAT))
    assert answer.status_code == 200
    me = answer.json()
    assert me == {"key": "JIRAUSER10000", "name": "admin", "emailAddress": "admin@corp.example",
                  "displayName": "Admin", "active": True}
    received = jira.requests[-1]
    assert received.raw_path == "/jira/rest/api/2/myself"
    assert (received.site, received.route, received.principal) == ("dc-1", "myself",
                                                                  "JIRAUSER10000")
    assert received.headers["authorization"] == "Bearer " + PAT


WRONG_DATA_CENTER = {
    "no header": {},
    "wrong PAT": bearer(PAT[:-1] + "X"),
    "another site's PAT": bearer(OTHER_PAT),
    "bearer without a token": {"Authorization": "Bearer"},
    "PAT as Basic": basic("admin", PAT),
    "PAT without scheme": {"Authorization": PAT},
    "two tokens": {"Authorization": f"Bearer {PAT} {PAT}"},
}


@pytest.mark.parametrize("headers", WRONG_DATA_CENTER.values(), ids=WRONG_DATA_CENTER.keys())
def test_8_1_data_center_refuses_a_wrong_or_missing_pat(
    jira: FakeJira, data_center: FakeJiraSite, client: httpx.Client, headers: dict[str, str]
) -> None:
    jira.add_data_center_site("dc-2", OTHER_PAT, base_path="/other")
    for path in ("/rest/api/2/myself", "/rest/api/2/issue/OPS-7?fields=summary"):
        answer = client.get(data_center.base_url + path, headers=headers)
        assert answer.status_code == 401
        assert "Disk full" not in answer.text
    assert jira.refused == 2
    assert all(not r.verified for r in jira.requests)


def test_8_1_data_center_answers_the_v2_paths_with_data_center_shapes(
    data_center: FakeJiraSite, client: httpx.Client
) -> None:
    def get(path: str, **params: str) -> httpx.Response:
        return client.get(data_center.base_url + path, params=params, headers=bearer(PAT))

    issue = get("/rest/api/2/issue/OPS-7", fields="summary").json()
    assert (issue["key"], issue["fields"]) == ("OPS-7", {"summary": "Disk full on worker 3"})
    assert get("/rest/api/2/issue/OPS-404", fields="summary").status_code == 404

    found = get("/rest/api/2/search", jql='text ~ "disk"', fields="summary", maxResults="20")
    assert found.json() == {"startAt": 0, "maxResults": 20, "total": 1,
                            "issues": [get("/rest/api/2/issue/OPS-7", fields="summary").json()]}

    users = get("/rest/api/2/user/search", username="john").json()
    assert users == [{"key": "john.smith", "name": "john.smith", "displayName": "John Smith",
                      "active": True, "emailAddress": "john@corp.example"}]
    everyone = get("/rest/api/2/user/search", username="").json()
    assert {u["key"] for u in everyone} == {"JIRAUSER10100", "john.smith"}
    assert all("accountId" not in u for u in everyone)
    assert get("/rest/api/2/user/search", query="john").status_code == 400  # v3's parameter

    assignable = get("/rest/api/2/user/assignable/search", project="OPS", username="d").json()
    assert [u["key"] for u in assignable] == ["JIRAUSER10100"]
    assert get("/rest/api/2/user/assignable/search", project="NOPE",
               username="d").status_code == 404
    assert get("/rest/api/2/user/assignable/search", username="d").status_code == 400

    projects = get("/rest/api/2/project", query="ops").json()  # no server-side filter
    assert projects == [{"id": "10100", "key": "OPS", "name": "Operations"},
                        {"id": "10101", "key": "APP", "name": "Application"}]
    assert get("/rest/api/2/status").json() == fixture_json("jira-status-list.json")


def test_8_1_data_center_has_no_v3_paths_and_nothing_outside_its_context_path(
    jira: FakeJira, data_center: FakeJiraSite, client: httpx.Client
) -> None:
    for path in ("/rest/api/3/myself", "/rest/api/3/issue/OPS-7?fields=summary",
                 "/rest/api/3/search/jql?jql=x", "/rest/api/3/user/email?accountId=x"):
        assert client.get(data_center.base_url + path, headers=bearer(PAT)).status_code == 404
    outside = client.get(jira.url + "/rest/api/2/myself", headers=bearer(PAT))
    assert outside.status_code == 404 and jira.requests[-1].site is None


def test_8_1_data_center_routes_take_programmed_failures(
    data_center: FakeJiraSite, client: httpx.Client
) -> None:
    data_center.reply("search", Reply.rate_limited("7"), times=1)
    url = data_center.base_url + "/rest/api/2/search?jql=x"
    limited = client.get(url, headers=bearer(PAT))
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "7")
    assert client.get(url, headers=bearer(PAT)).status_code == 200
    # A wrong credential is refused before any programmed answer.
    data_center.reply("myself", Reply.json({"key": "forged"}))
    assert client.get(data_center.base_url + "/rest/api/2/myself",
                      headers=bearer(OTHER_PAT)).status_code == 401


def test_8_1_a_revoked_pat_is_refused(
    jira: FakeJira, data_center: FakeJiraSite, client: httpx.Client
) -> None:
    url = data_center.base_url + "/rest/api/2/myself"
    assert client.get(url, headers=bearer(PAT)).status_code == 200
    data_center.pats.clear()
    assert client.get(url, headers=bearer(PAT)).status_code == 401
    assert jira.refused == 1
