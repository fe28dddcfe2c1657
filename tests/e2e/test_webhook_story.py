"""The `webhook` transport end to end (issue #13, SPEC §8.0, §8.1, §A, W1–W10, S1–S8): a real
`sentry-jira serve` process, real sockets, the fake Jira in Cloud-token mode and in Data Center
mode (a context path, REST v2, Bearer PAT, users by `key`) and the fake Sentry, all on 127.0.0.1.

The story runs once per flavor: register → tenants list → bind → link → a signed status change
resolves in Sentry (journal `applied`) → signed assignee changes assign → search (S3/S4/S5)
through the site → rotate the secret twice → remove. Then the refusals: a refused credential,
an unreachable Jira, a taken `base_url`, a cross-site signature, an unsigned delivery, and the
same body under another identifier.

Written to the SPEC before the implementation landed. Assumptions where the SPEC is silent
(the coordinator fixes them if the implementation chose otherwise):
- `POST /api/sites/{id}/webhook-secret` answers 200 with the new secret under `webhook_secret`
  (the key `POST /api/sites` uses).
- `DELETE /api/sites/{id}` answers 204 (as the other §A deletions) or 200.
- A registration refused by Jira is 400 whose `detail` names Jira or the credential.
- "After the hour" is tested by rotating twice: only one previous secret is kept
  (docs/jira-webhooks.md), so the first secret is refused at once after the second rotation.
- A removed site's webhook secrets and credential are gone from every row, clear or encrypted
  (checked by decrypting every Fernet token in the file with the test key).
- Cloud webhook sites look an assignee's hidden e-mail up with `GET /rest/api/3/user?accountId=`
  whatever `SENTRY_JIRA_USE_EMAIL_SCOPE` says (that option is the Connect scope).
- The journal of a delivery holds its status / assignee entries (other kinds are ignored here).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from tests.support.builders import ADMIN_TOKEN
from tests.support.fake_jira import FakeJira, FakeJiraSite, RecordedRequest
from tests.support.fake_sentry import FakeSentry
from tests.support.hub_signature import data_center_body, hub_signed_delivery
from tests.support.leak_scan import database_files, find_leaks
from tests.support.process import free_port, running_server
from tests.support.sync_e2e import install, journal, wait_for
from tests.support.webhook_sites import (
    BASE,
    SITES,
    WEBHOOK_SECRET_SHAPE,
    admin_call,
    deliver,
    site_request,
    stored_anywhere,
    table_rows,
    webhook_env,
    webhook_path,
)
from tests.support.webhooks import issue_updated_body

pytestmark = pytest.mark.e2e

FLAVORS = ["cloud", "data-center"]
CLOUD_EMAIL = "jira-bot@example.com"
ADA = "557058:ada-hides-her-email"  # a Cloud user whose e-mail the payload does not carry


@attrs.frozen(repr=False)  # a failing assertion must not print the credential
class Flavor:
    """What differs between a Jira Cloud site (API token) and a Data Center site (PAT)."""

    name: str
    org: str
    sentry_token: str
    issue_key: str
    credential: str
    email: str | None  # the API token's owner; None for a PAT
    scheme: str  # of the Authorization header Jira must receive
    principal: str  # who the fake Jira says made the call
    rest: str  # the REST prefix of this flavor
    base_path: str  # the context path of the site's base URL


def a_flavor(name: str) -> Flavor:
    token = secrets.token_urlsafe(24)
    if name == "cloud":
        return Flavor(name, "acme-cloud", "sntrys_cloud-" + token, "APP-123",
                      "cloud-api-token-" + secrets.token_urlsafe(24), CLOUD_EMAIL, "basic",
                      CLOUD_EMAIL, "/rest/api/3", "")
    return Flavor(name, "acme-dc", "sntrys_dc-" + token, "OPS-7",
                  "dc-pat-" + secrets.token_urlsafe(24), None, "bearer", "JIRAUSER10000",
                  "/rest/api/2", "/jira")


@attrs.define(repr=False)
class World:
    url: str
    database: Path
    log: Path
    sentry: FakeSentry
    flavors: dict[str, Flavor]
    jiras: dict[str, FakeJira]
    sites: dict[str, FakeJiraSite]
    bodies: list[bytes] = attrs.Factory(list)  # every response that must show no secret
    secrets: dict[str, str] = attrs.Factory(dict)  # label -> value, for the final scans

    def remember(self, label: str, value: str) -> str:
        self.secrets[f"{label} #{len(self.secrets)}"] = value
        return value

    def admin(self, method: str, path: str, body: Any = None, *, shows_secret: bool = False
              ) -> httpx.Response:
        response = admin_call(self.url, method, path, body)
        if not shows_secret:  # §8.1: the one answer that shows a secret is not a leak
            self.bodies.append(response.content)
        return response

    def deliver(self, site_id: int | str, secret: str, body: dict[str, Any] | bytes, *,
                identifier: str | None = None) -> httpx.Response:
        response = deliver(self.url, site_id, secret, body, identifier=identifier)
        self.bodies.append(response.content)
        return response

    def search(self, org: str, site_id: int, **params: str) -> httpx.Response:
        response = httpx.get(f"{self.url}/extensions/jira/search/{org}/{site_id}/",
                             params=params, timeout=15,
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        self.bodies.append(response.content)
        return response

    def settled(self) -> None:
        """No delivery left to process: table snapshots and counters stay still."""
        def idle() -> bool:
            health = httpx.get(self.url + "/health", timeout=15)
            return health.status_code == 200 and health.json()["queue_depth"] == 0
        wait_for(idle, what="an empty queue")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("webhook-story")
    log = directory / "serve.log"
    flavors = {name: a_flavor(name) for name in FLAVORS}
    with FakeJira("unused-app-key") as cloud_jira, FakeJira("unused-app-key") as dc_jira, \
            FakeSentry() as sentry:
        cloud = flavors["cloud"]
        dc = flavors["data-center"]
        sites = {
            "cloud": cloud_jira.add_cloud_token_site("cloud-site", CLOUD_EMAIL, cloud.credential),
            "data-center": dc_jira.add_data_center_site("dc-site", dc.credential,
                                                        base_path="/jira"),
        }
        for flavor in flavors.values():
            sentry.add_org(flavor.org, flavor.sentry_token)
            sentry.add_issue(flavor.org, "4711")
        sentry.add_member(cloud.org, "42", [("grace@example.com", True)])
        sentry.add_member(cloud.org, "43", [("ada@example.com", True)])
        sentry.add_member(dc.org, "52", [("dee@corp.example", True)])
        with running_server(webhook_env(directory, worker=True), log=log) as (url, _):
            told = World(url=url, database=directory / "sentry-jira.db", log=log, sentry=sentry,
                         flavors=flavors, jiras={"cloud": cloud_jira, "data-center": dc_jira},
                         sites=sites)
            for flavor in flavors.values():
                told.remember("credential", flavor.credential)
                told.remember("sentry token", flavor.sentry_token)
            told.remember("admin token", ADMIN_TOKEN)
            yield told
    # The server has stopped and flushed its log: no secret in it, in an answer, or in clear
    # in the database files.
    places = {"server log": log.read_bytes()}
    places.update({f"response {n}": body for n, body in enumerate(told.bodies)})
    places.update(database_files(directory, exclude=[]))
    assert [f"{leak.secret} in {leak.place}" for leak in find_leaks(told.secrets, places)] == []


# -- deliveries -----------------------------------------------------------------------------


def a_change(flavor: Flavor, *, updated: str, changelog_id: str, items: list[dict[str, Any]],
             assignee: Any = ...) -> dict[str, Any]:
    """A `jira:issue_updated` body of this flavor's fixture with its time, changelog and
    (optionally) assignee replaced."""
    body = issue_updated_body("status") if flavor.name == "cloud" else data_center_body()
    fields = body["issue"]["fields"]
    body["issue"]["key"] = flavor.issue_key
    fields["updated"] = updated
    body["changelog"] = {"id": changelog_id, "items": items}
    if assignee is not ...:
        fields["assignee"] = assignee
    return body


def at(flavor: Flavor, minute: int) -> str:
    day = "2025-11-28" if flavor.name == "cloud" else "2026-12-04"
    return f"{day}T10:{minute:02d}:00.000+0000"


def item(field: str, frm: str | None, to: str | None) -> dict[str, Any]:
    return {"field": field, "fieldtype": "jira", "from": frm, "fromString": frm, "to": to,
            "toString": to}


def into_done(flavor: Flavor) -> dict[str, Any]:
    """In Progress (3) → Done (10101, status category `done` in the fake's status list)."""
    body = a_change(flavor, updated=at(flavor, 0), changelog_id="70001",
                    items=[item("status", "3", "10101")])
    body["issue"]["fields"]["status"] = {"id": "10101", "name": "Done",
                                         "statusCategory": {"id": 3, "key": "done"}}
    return body


def not_relevant(flavor: Flavor, n: int) -> dict[str, Any]:
    """A summary edit: verified, then W4 `ignored` — a signature probe with no side effect."""
    return a_change(flavor, updated=at(flavor, 30 + n), changelog_id=f"7900{n}",
                    items=[item("summary", "old", f"new {n}")])


# -- the story ------------------------------------------------------------------------------


def jira_calls(world: World, flavor: Flavor, since: int) -> list[RecordedRequest]:
    return world.jiras[flavor.name].requests[since:]


def assert_called_with_the_credential(world: World, flavor: Flavor, since: int) -> None:
    """§8.1 outbound: every call went to the site's base URL (context path included), on the
    flavor's REST version, authenticated as the credential's owner, and none was refused."""
    calls = jira_calls(world, flavor, since)
    assert calls, "Jira was not called"
    for call in calls:
        scheme = call.headers.get("authorization", "").partition(" ")[0].lower()
        assert (call.verified, call.principal, scheme) == (True, flavor.principal, flavor.scheme)
        assert call.raw_path.startswith(flavor.base_path + "/rest/api/")
        assert call.route != "email", "/user/email is for apps only (§8.1)"
    assert world.jiras[flavor.name].refused == 0


def register(world: World, flavor: Flavor) -> dict[str, Any]:
    site = world.sites[flavor.name]
    before = len(world.jiras[flavor.name].requests)
    response = world.admin("POST", SITES, site_request(
        flavor.name, site.base_url, flavor.credential, flavor.email), shows_secret=True)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    world.remember("webhook secret", created["webhook_secret"])
    assert isinstance(created["id"], int)
    assert {k: created[k] for k in ("transport", "flavor", "base_url")} == {
        "transport": "webhook", "flavor": flavor.name, "base_url": site.base_url}
    assert created["webhook_url"].endswith(webhook_path(created["id"]))
    assert created["webhook_url"] == BASE + webhook_path(created["id"])
    assert WEBHOOK_SECRET_SHAPE.match(created["webhook_secret"])
    assert flavor.credential not in response.text
    # The credential was tried once against Jira before saving (`myself` of this flavor).
    (check,) = jira_calls(world, flavor, before)
    assert (check.route, check.method, check.raw_path) == (
        "myself", "GET", f"{flavor.base_path}{flavor.rest}/myself")
    assert_called_with_the_credential(world, flavor, before)
    return created


def wait_for_entries(world: World, site_id: int, delivery: str, count: int
                     ) -> list[tuple[str, str, str]]:
    """(org, kind, outcome) of a delivery's status/assignee journal entries, once `count`."""
    def entries() -> list[tuple[str, str, str]]:
        return sorted((e["org"], e["kind"], e["outcome"]) for e in journal(world.url, site_id)
                      if e["delivery"] == delivery and e["kind"] in ("status", "assignee"))
    wait_for(lambda: len(entries()) >= count, what=f"{count} journal entries of {delivery}")
    return entries()


def accepted(response: httpx.Response) -> str:
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "accepted"
    return str(body["delivery"])


def sentry_writes(world: World, flavor: Flavor) -> list[tuple[Any, str | None]]:
    path = FakeSentry.issue_path(flavor.org, "4711")
    return [(r.json, r.authorization) for r in world.sentry.requests_to("PUT", path)]


def sync_status_and_assignee(world: World, flavor: Flavor, site_id: int) -> None:
    site = world.sites[flavor.name]
    jira_before = len(world.jiras[flavor.name].requests)
    token = f"Bearer {flavor.sentry_token}"

    # W5 status: a signed change into a done status resolves the linked Sentry issue.
    delivery = accepted(world.deliver(site_id, secret_of(world, site_id), into_done(flavor)))
    assert wait_for_entries(world, site_id, delivery, 1) == [(flavor.org, "status", "applied")]
    assert sentry_writes(world, flavor) == [({"status": "resolved"}, token)]
    statuses = [c for c in jira_calls(world, flavor, jira_before) if c.route == "statuses"]
    assert [c.raw_path for c in statuses] == [f"{flavor.base_path}/rest/api/2/status"]

    # W5 assignee, by the e-mail the payload carries.
    if flavor.name == "cloud":
        grace = issue_updated_body("assignee")["issue"]["fields"]["assignee"]
        by_email = a_change(flavor, updated=at(flavor, 1), changelog_id="70002",
                            items=[item("assignee", None, grace["accountId"])], assignee=grace)
        user = "42"
    else:
        dee = data_center_body()["issue"]["fields"]["assignee"]  # emailAddress dee@corp.example
        by_email = a_change(flavor, updated=at(flavor, 1), changelog_id="70002",
                            items=[item("assignee", "JIRAUSER10007", dee["key"])], assignee=dee)
        user = "52"
    delivery = accepted(world.deliver(site_id, secret_of(world, site_id), by_email))
    assert wait_for_entries(world, site_id, delivery, 1) == [(flavor.org, "assignee", "applied")]
    assert sentry_writes(world, flavor)[-1] == ({"assignedTo": f"user:{user}"}, token)

    if flavor.name == "cloud":
        # §8.1: a hidden e-mail comes from GET /rest/api/3/user?accountId= (not /user/email).
        site.add_user(ADA, "Ada Lovelace", "ada@example.com")
        hidden = {"accountId": ADA, "displayName": "Ada Lovelace", "active": True}
        before = len(world.jiras[flavor.name].requests)
        change = a_change(flavor, updated=at(flavor, 2), changelog_id="70003",
                          items=[item("assignee", grace["accountId"], ADA)], assignee=hidden)
        delivery = accepted(world.deliver(site_id, secret_of(world, site_id), change))
        assert wait_for_entries(world, site_id, delivery, 1) == [
            (flavor.org, "assignee", "applied")]
        assert sentry_writes(world, flavor)[-1] == ({"assignedTo": "user:43"}, token)
        lookups = [c for c in jira_calls(world, flavor, before) if c.route == "user"]
        assert [(c.raw_path, c.query) for c in lookups] == [("/rest/api/3/user",
                                                            {"accountId": [ADA]})]
    else:
        # §8.1: on Data Center a user is its `key`; a mapping accepts any key (`john.smith`).
        mapped = world.admin("PUT", f"/api/tenants/{site_id}/orgs/{flavor.org}/accounts/"
                             "john.smith", {"sentry_user_id": "53"})
        assert mapped.status_code == 200, mapped.text
        assert mapped.json() == {"account_id": "john.smith", "sentry_user_id": "53"}
        john = {"key": "john.smith", "name": "john.smith", "displayName": "John Smith",
                "active": True}
        members_before = len(world.sentry.requests_to("GET", FakeSentry.members_path(
            flavor.org)))
        change = a_change(flavor, updated=at(flavor, 2), changelog_id="70003",
                          items=[item("assignee", dee["key"], "john.smith")], assignee=john)
        delivery = accepted(world.deliver(site_id, secret_of(world, site_id), change))
        assert wait_for_entries(world, site_id, delivery, 1) == [
            (flavor.org, "assignee", "applied")]
        assert sentry_writes(world, flavor)[-1] == ({"assignedTo": "user:53"}, token)
        members = world.sentry.requests_to("GET", FakeSentry.members_path(flavor.org))
        assert len(members) == members_before, "a mapped key needs no e-mail look-up"
    assert_called_with_the_credential(world, flavor, jira_before)


def search_through_the_site(world: World, flavor: Flavor, site_id: int) -> None:
    site = world.sites[flavor.name]
    before = len(world.jiras[flavor.name].requests)
    site.add_issue(flavor.issue_key, "Disk full <b>on</b> worker 3")
    site.jql_results['text ~ "disk full"'] = [flavor.issue_key]
    if flavor.name == "cloud":
        site.add_user("557058:dee", "Dee Dee", "dee@example.com", projects=("OPS",))
        site.add_user("557058:deb", "Debra", None)  # e-mail hidden
        dee, deb = "557058:dee", "557058:deb"
    else:
        site.add_data_center_user("JIRAUSER10100", "dee", "Dee Dee", "dee@example.com",
                                  projects=("OPS",))
        site.add_data_center_user("deb.smith", "deb.smith", "Debra", None)
        dee, deb = "JIRAUSER10100", "deb.smith"  # §8.1: Data Center users come back by key
    site.add_project("10100", "OPS", "Operations")
    site.add_project("10200", "WEB", "Web shop")

    def found(**params: str) -> Any:
        response = world.search(flavor.org, site_id, **params)
        assert response.status_code == 200, response.text
        return response.json()

    issue = [{"label": f"({flavor.issue_key}) Disk full on worker 3", "value": flavor.issue_key}]
    assert found(field="externalIssue", query=flavor.issue_key.lower()) == issue  # S3, S7
    assert found(field="externalIssue", query="disk full") == issue  # S3 text search
    assert found(field="assignee", query="de") == [  # S4 without a project
        {"value": dee, "label": "Dee Dee - dee@example.com"}, {"value": deb, "label": "Debra"}]
    assert found(field="reporter", query="dee", project="OPS") == [  # S4 assignable
        {"value": dee, "label": "Dee Dee - dee@example.com"}]
    assert found(field="project", query="oper") == [  # S5 (filtered locally on Data Center)
        {"label": "OPS - Operations", "value": "10100"}]

    routes = [c.route for c in jira_calls(world, flavor, before)]
    assert routes == ["issue", "search", "users", "assignable", "projects"]
    searched = next(c for c in jira_calls(world, flavor, before) if c.route == "search")
    assert searched.query["jql"] == ['text ~ "disk full"']
    if flavor.name == "data-center":
        users, assignable = [c for c in jira_calls(world, flavor, before)
                             if c.route in ("users", "assignable")]
        assert users.query["username"] == ["de"]
        assert (assignable.query["project"], assignable.query["username"]) == (["OPS"], ["dee"])
    assert_called_with_the_credential(world, flavor, before)


SECRETS: dict[int, list[str]] = {}  # site id -> its webhook secrets, newest last


def secret_of(world: World, site_id: int) -> str:
    return SECRETS[site_id][-1]


def rotate(world: World, site_id: int) -> str:
    response = world.admin("POST", f"{SITES}/{site_id}/webhook-secret", shows_secret=True)
    assert response.status_code == 200, response.text
    secret = str(response.json()["webhook_secret"])
    assert WEBHOOK_SECRET_SHAPE.match(secret)
    assert secret not in SECRETS[site_id]
    SECRETS[site_id].append(world.remember("webhook secret", secret))
    return secret


def verifies(world: World, flavor: Flavor, site_id: int, secret: str, n: int) -> int:
    """The answer to a signed, verifiable but not relevant delivery: 200 or 401."""
    response = world.deliver(site_id, secret, not_relevant(flavor, n))
    if response.status_code == 200:
        assert response.json() == {"status": "ignored"}
    return response.status_code


def rotate_twice(world: World, flavor: Flavor, site_id: int) -> None:
    first = secret_of(world, site_id)
    second = rotate(world, site_id)
    # Within the hour both verify, so Jira can be updated without losing a delivery.
    assert verifies(world, flavor, site_id, first, 1) == 200
    assert verifies(world, flavor, site_id, second, 2) == 200
    # "After the hour", without waiting it: a second rotation keeps only the previous secret,
    # so the first one is refused at once while the second still verifies.
    third = rotate(world, site_id)
    assert verifies(world, flavor, site_id, first, 3) == 401
    assert verifies(world, flavor, site_id, second, 4) == 200
    assert verifies(world, flavor, site_id, third, 5) == 200


def remove(world: World, flavor: Flavor, site_id: int) -> None:
    world.settled()
    secrets_of_site = [*SECRETS[site_id][-2:], flavor.credential]
    # The check below can fail: before removal the current secrets are stored (encrypted).
    assert all(stored_anywhere(world.database, s) for s in secrets_of_site)
    removed = world.admin("DELETE", f"{SITES}/{site_id}")
    assert removed.status_code in (200, 204), removed.text

    for n, secret in enumerate(SECRETS[site_id]):
        response = world.deliver(site_id, secret, not_relevant(flavor, 6 + n))
        assert response.status_code == 401, response.text
    shown = world.admin("GET", f"/api/tenants/{site_id}")
    assert shown.status_code == 200, shown.text
    assert (shown.json()["status"], shown.json()["transport"]) == ("uninstalled", "webhook")
    assert shown.json()["orgs"] == [flavor.org]  # bindings are kept, as L5
    assert world.search(flavor.org, site_id, field="project", query="ops").status_code == 404
    for secret in [*SECRETS[site_id], flavor.credential]:
        assert not stored_anywhere(world.database, secret), "a secret outlived the removal"


@pytest.mark.parametrize("name", FLAVORS)
def test_8_1_the_story_register_bind_link_sync_search_rotate_remove(world: World, name: str
                                                                    ) -> None:
    flavor = world.flavors[name]
    created = register(world, flavor)
    site_id = int(created["id"])
    SECRETS[site_id] = [created["webhook_secret"]]

    listed = {t["id"]: t for t in world.admin("GET", "/api/tenants").json()}
    shown = world.admin("GET", f"/api/tenants/{site_id}").json()
    for tenant in (listed[site_id], shown):
        assert {k: tenant[k] for k in ("transport", "flavor", "base_url", "status", "orgs",
                                       "client_key")} == {
            "transport": "webhook", "flavor": name, "base_url": world.sites[name].base_url,
            "status": "installed", "orgs": [], "client_key": None}

    bound = world.admin("PUT", f"/api/tenants/{site_id}/orgs/{flavor.org}",
                        {"sentry_url": world.sentry.url, "sentry_token": flavor.sentry_token})
    assert bound.status_code == 200, bound.text
    linked = world.admin("PUT", f"/api/tenants/{site_id}/orgs/{flavor.org}/links/"
                         f"{flavor.issue_key}", {"sentry_issue_ids": ["4711"]})
    assert linked.status_code == 200, linked.text

    sync_status_and_assignee(world, flavor, site_id)
    search_through_the_site(world, flavor, site_id)
    rotate_twice(world, flavor, site_id)
    remove(world, flavor, site_id)


# -- refusals -------------------------------------------------------------------------------


@contextlib.contextmanager
def nothing_stored(world: World) -> Iterator[None]:
    world.settled()
    rows = table_rows(world.database)
    yield
    assert table_rows(world.database) == rows, "a refused request changed the database"


def an_api_token_site(jira: FakeJira, credential: str) -> FakeJiraSite:
    return jira.add_cloud_token_site("extra", CLOUD_EMAIL, credential)


REFUSED_CREDENTIALS = {
    "cloud: a wrong API token": ("cloud", CLOUD_EMAIL, "wrong-"),
    "cloud: the API token of another e-mail": ("cloud", "someone@example.com", ""),
    "data-center: a wrong PAT": ("data-center", None, "wrong-"),
}


@pytest.mark.parametrize("case", list(REFUSED_CREDENTIALS))
def test_8_1_a_credential_jira_refuses_is_400_naming_it_and_nothing_is_stored(
    world: World, case: str
) -> None:
    flavor_name, email, prefix = REFUSED_CREDENTIALS[case]
    good = world.remember("credential", "good-" + secrets.token_urlsafe(24))
    sent = world.remember("credential", prefix + good) if prefix else good
    with FakeJira("unused-app-key") as jira:
        if flavor_name == "cloud":
            site = an_api_token_site(jira, good)
        else:
            site = jira.add_data_center_site("extra-dc", good, base_path="/jira")
        with nothing_stored(world):
            response = world.admin("POST", SITES, site_request(flavor_name, site.base_url,
                                                               sent, email))
            assert response.status_code == 400, response.text
        detail = response.json()["detail"]
        assert isinstance(detail, str) and ("jira" in detail.lower()
                                            or "credential" in detail.lower())
        assert sent not in response.text
        # Tried exactly once, against `myself`, and refused by Jira.
        assert [(r.route, r.verified) for r in jira.requests] == [("myself", False)]
        assert jira.refused == 1


def test_8_1_jira_unreachable_during_the_check_is_502_and_nothing_is_stored(world: World
                                                                           ) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    credential = world.remember("credential", "unreachable-" + secrets.token_urlsafe(24))
    with nothing_stored(world):
        response = world.admin("POST", SITES, site_request("cloud", closed, credential,
                                                           CLOUD_EMAIL))
        assert response.status_code == 502, response.text
    assert set(response.json()) == {"detail"}


BAD_REGISTRATIONS: dict[str, Any] = {
    "unknown flavor": lambda url: {**site_request("cloud", url, "x" * 24, CLOUD_EMAIL),
                                   "flavor": "server"},
    "no credential": lambda url: {k: v for k, v in site_request(
        "cloud", url, "x" * 24, CLOUD_EMAIL).items() if k != "credential"},
    "cloud without an e-mail": lambda url: site_request("cloud", url, "x" * 24),
    "cloud with a path": lambda url: site_request("cloud", url + "/jira", "x" * 24, CLOUD_EMAIL),
    # 127.0.0.2 is loopback too: a bug that connected would still stay on this machine.
    "a host no pattern allows": lambda url: site_request(
        "cloud", url.replace("127.0.0.1", "127.0.0.2"), "x" * 24, CLOUD_EMAIL),
    "userinfo": lambda url: site_request(
        "data-center", url.replace("http://", "http://user:pw@") + "/jira", "x" * 24),
    "not JSON object": lambda url: ["base_url", url],
}


@pytest.mark.parametrize("case", list(BAD_REGISTRATIONS))
def test_8_1_bad_registrations_are_400_and_jira_is_not_called(world: World, case: str) -> None:
    with FakeJira("unused-app-key") as jira:
        an_api_token_site(jira, "x" * 24)
        with nothing_stored(world):
            response = world.admin("POST", SITES, BAD_REGISTRATIONS[case](jira.url))
            assert response.status_code == 400, response.text
        assert set(response.json()) == {"detail"}
        assert jira.connections == 0


def test_8_1_a_base_url_an_installed_site_already_has_is_409(world: World) -> None:
    credential = world.remember("credential", "taken-" + secrets.token_urlsafe(24))
    with FakeJira("unused-app-key") as jira, FakeJira("unused-app-key") as connect_jira:
        an_api_token_site(jira, credential)
        first = world.admin("POST", SITES, site_request("cloud", jira.url, credential,
                                                        CLOUD_EMAIL), shows_secret=True)
        assert first.status_code == 201, first.text
        world.remember("webhook secret", first.json()["webhook_secret"])
        with nothing_stored(world):
            again = world.admin("POST", SITES, site_request("cloud", jira.url, credential,
                                                            CLOUD_EMAIL))
            assert again.status_code == 409, again.text
        # A Connect tenant's base URL is taken too: one site, one transport (§8.0).
        an_api_token_site(connect_jira, credential)
        install(webhook_env(world.database.parent, worker=True), "connect-taken",
                world.remember("shared secret", secrets.token_urlsafe(32)), connect_jira.url)
        with nothing_stored(world):
            taken = world.admin("POST", SITES, site_request("cloud", connect_jira.url,
                                                            credential, CLOUD_EMAIL))
            assert taken.status_code == 409, taken.text


TWO_SITES_ORG = "acme-two"


@attrs.frozen(repr=False)
class TwoSites:
    a: int
    a_secret: str
    b: int
    b_secret: str
    body: dict[str, Any]
    jiras: tuple[FakeJira, ...]


@pytest.fixture(scope="module")
def two_sites(world: World) -> Iterator[TwoSites]:
    """Site A (Cloud) and site B (Data Center), both bound and linked, so that an accepted
    delivery would reach Jira (statuses) and Sentry (a resolve)."""
    ids: list[int] = []
    sentry_token = world.remember("sentry token", "sntrys_two-" + secrets.token_urlsafe(24))
    world.sentry.add_org(TWO_SITES_ORG, sentry_token)
    world.sentry.add_issue(TWO_SITES_ORG, "4711")
    with FakeJira("unused-app-key") as cloud_jira, FakeJira("unused-app-key") as dc_jira:
        cloud = world.remember("credential", "site-a-" + secrets.token_urlsafe(24))
        pat = world.remember("credential", "site-b-" + secrets.token_urlsafe(24))
        an_api_token_site(cloud_jira, cloud)
        dc_jira.add_data_center_site("site-b", pat, base_path="/jira")
        requests = [site_request("cloud", cloud_jira.url, cloud, CLOUD_EMAIL),
                    site_request("data-center", dc_jira.url + "/jira", pat)]
        created = []
        for request in requests:
            response = world.admin("POST", SITES, request, shows_secret=True)
            assert response.status_code == 201, response.text
            created.append(response.json())
            world.remember("webhook secret", response.json()["webhook_secret"])
            ids.append(response.json()["id"])
        for site_id in ids:
            bound = world.admin("PUT", f"/api/tenants/{site_id}/orgs/{TWO_SITES_ORG}", {
                "sentry_url": world.sentry.url, "sentry_token": sentry_token})
            assert bound.status_code == 200, bound.text
            link = f"/api/tenants/{site_id}/orgs/{TWO_SITES_ORG}/links/APP-123"
            linked = world.admin("PUT", link, {"sentry_issue_ids": ["4711"]})
            assert linked.status_code == 200, linked.text
        yield TwoSites(created[0]["id"], created[0]["webhook_secret"], created[1]["id"],
                       created[1]["webhook_secret"], into_done(world.flavors["cloud"]),
                       (cloud_jira, dc_jira))


@contextlib.contextmanager
def nothing_recorded_nor_sent(world: World, sites: TwoSites) -> Iterator[None]:
    """No row changed, and neither Jira (any fake) nor Sentry heard of it."""
    jiras = [*world.jiras.values(), *sites.jiras]
    with nothing_stored(world):
        sentry_before = len(world.sentry.requests)
        jira_before = [(j.connections, len(j.requests)) for j in jiras]
        yield
        time.sleep(0.3)  # room for a call that should not happen to show up
        assert len(world.sentry.requests) == sentry_before, "Sentry was called"
        assert [(j.connections, len(j.requests)) for j in jiras] == jira_before, (
            "Jira was called")


def assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert set(response.json()) == {"detail"}


def test_8_1_a_delivery_for_site_a_signed_with_site_b_secret_is_401(
    world: World, two_sites: TwoSites
) -> None:
    with nothing_recorded_nor_sent(world, two_sites):
        assert_401(world.deliver(two_sites.a, two_sites.b_secret, two_sites.body,
                                 identifier="cross-site-1"))
        assert_401(world.deliver(two_sites.b, two_sites.a_secret, two_sites.body))


def test_8_0_an_unsigned_delivery_is_401_with_nothing_recorded_and_no_egress(
    world: World, two_sites: TwoSites
) -> None:
    raw = json.dumps(two_sites.body).encode()
    with nothing_recorded_nor_sent(world, two_sites):
        response = httpx.post(world.url + webhook_path(two_sites.a), content=raw, timeout=15,
                              headers={"Content-Type": "application/json",
                                       "X-Atlassian-Webhook-Identifier": "unsigned-1"})
        world.bodies.append(response.content)
        assert_401(response)


def test_8_1_the_same_body_under_another_identifier_is_a_duplicate(
    world: World, two_sites: TwoSites
) -> None:
    """The identifier header is not signed: the delivery id is a hash of the raw body."""
    body = dict(two_sites.body, timestamp=1764320999000)
    headers, raw = hub_signed_delivery(two_sites.a_secret, body, identifier="first-identifier")
    first = httpx.post(world.url + webhook_path(two_sites.a), content=raw, headers=headers,
                       timeout=15)
    delivery = accepted(first)
    assert delivery not in ("first-identifier", "")
    for identifier in ("second-identifier", None):
        response = world.deliver(two_sites.a, two_sites.a_secret, raw, identifier=identifier)
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "duplicate"}
    # One byte more is another delivery: the hash covers the raw body.
    other = accepted(world.deliver(two_sites.a, two_sites.a_secret, raw + b" ",
                                   identifier="first-identifier"))
    assert other != delivery
