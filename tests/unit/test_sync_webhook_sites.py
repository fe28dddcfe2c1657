"""The worker's side of webhook sites (#13; SPEC W2, W5, §8.1): Data Center deliveries are read
and synced, a Data Center user is its `key`, and a webhook site (Cloud API token, Data Center
PAT) looks a hidden e-mail up through the Jira port, while a Connect app without the e-mail
scope still does not. Driven through the in-memory fakes of `tests/support/sync_world.py`."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from tests.support.paths import fixture_json
from tests.support.sync_world import DONE, IN_PROGRESS, REOPENED, SyncWorld, status_item

from adapters.memory.sentry import MEMBERS, UPDATE
from core.issue_update import Assignee, Delivery, may_look_up_email
from core.issue_update.delivery import read_issue_update
from core.json_body import encode_json_body
from core.model.credentials import ApiToken, JiraFlavor, PersonalAccessToken, SiteCredential
from core.model.errors import BadRequest
from core.model.jira import JiraStatus
from core.model.tenant import Tenant, TenantStatus
from ports.tenants import TenantStore

DC_KEY = "JIRAUSER10100"  # the fixture's assignee, Dee
CLOUD_ACCOUNT = "5b10ac8d82e05b22cc7d4ef5"


def dc_body(**assignee_changes: Any) -> dict[str, Any]:
    """`jira-datacenter-issue-updated.json`: OPS-7 assigned to Dee (key JIRAUSER10100)."""
    body: dict[str, Any] = fixture_json("jira-datacenter-issue-updated.json")
    assignee = body["issue"]["fields"]["assignee"]
    for name, value in assignee_changes.items():
        if value is None:
            assignee.pop(name, None)
        else:
            assignee[name] = value
    return body


def dc_status_body() -> dict[str, Any]:
    """The Data Center delivery of OPS-7 moving In Progress (3) → Done (10101)."""
    body = dc_body()
    body["issue_event_type_name"] = "issue_generic"
    body["changelog"]["items"] = [status_item(IN_PROGRESS, DONE)]
    return body


def recorded(body: dict[str, Any]) -> bytes:
    """The body as the ack path records it (W2–W4), as the worker reads it back."""
    incoming = read_issue_update(copy.deepcopy(body), None)
    assert incoming is not None, "the delivery was found not relevant"
    return encode_json_body(incoming.record)


async def deliver(world: SyncWorld, site: Tenant, body: dict[str, Any]) -> None:
    """Record what the ack path records (not the raw body): the worker sees only the record."""
    incoming = read_issue_update(copy.deepcopy(body), None)
    assert incoming is not None, "the delivery was found not relevant"
    await world.deliver(site, incoming.record, delivery_id=incoming.id)


# -- W2, §8.1: the strict reader and the record ----------------------------------------------


def test_W2_W4_8_1_the_data_center_fixture_is_accepted_and_its_record_keeps_the_user_key() -> None:
    incoming = read_issue_update(dc_body(), None)  # no X-Atlassian-Webhook-Identifier on DC
    assert incoming is not None
    assert (incoming.issue_id, incoming.issue_key) == ("20042", "OPS-7")
    assert incoming.record["issue"]["fields"]["assignee"] == {
        "key": DC_KEY, "emailAddress": "dee@corp.example", "displayName": "Dee"}
    assert incoming.record["timestamp"] == 1764844800123  # DC sends milliseconds as a number
    delivery = Delivery.parse(incoming.record, delivery_id="d", tenant_id=1)
    assert delivery.assignee == Assignee(DC_KEY, "dee@corp.example")
    assert delivery.updated == datetime(2026, 12, 4, 10, 40, 0, 123000, tzinfo=UTC)


def test_W2_8_1_a_numeric_changelog_id_as_data_center_server_sends_it_is_accepted() -> None:
    body = dc_body()
    body["changelog"]["id"] = 30871  # Jira Server / DC documents `"id": 10124`, a number
    incoming = read_issue_update(body, None)
    assert incoming is not None and incoming.record["changelog"]["id"] == 30871


def test_W5_a_cloud_record_is_unchanged_byte_for_byte_and_gains_no_key() -> None:
    body = fixture_json("jira-issue-updated-assignee.json")
    assert b'"key":"5b' not in recorded(body)
    assert recorded(body).endswith(
        b'"assignee":{"accountId":"5b10ac8d82e05b22cc7d4ef5","emailAddress":"grace@example.com",'
        b'"displayName":"Grace Hopper"}}},"timestamp":1764320460000,"changelog":{"id":"88232",'
        b'"items":[{"field":"assignee","from":null,"fromString":null,'
        b'"to":"5b10ac8d82e05b22cc7d4ef5","toString":"Grace Hopper"}]}}')


def test_W5_8_1_a_cloud_account_id_wins_over_a_legacy_key() -> None:
    body = fixture_json("jira-issue-updated-assignee.json")
    body["issue"]["fields"]["assignee"]["key"] = "legacy-key"
    record = read_issue_update(body, None)
    assert record is not None
    delivery = Delivery.parse(record.record, delivery_id="d", tenant_id=1)
    assert delivery.assignee == Assignee(CLOUD_ACCOUNT, "grace@example.com")


@pytest.mark.parametrize(
    ("key", "detail"),
    [("k" * 129, r"^issue\.fields\.assignee\.key must be at most 128 characters$"),
     (["JIRAUSER1"], r"^issue\.fields\.assignee\.key must be a string$"),
     ({"k": 1}, r"^issue\.fields\.assignee\.key must be a string$")],
)
def test_W2_8_1_a_user_key_beyond_its_bound_is_400_before_anything_is_recorded(
    key: Any, detail: str
) -> None:
    with pytest.raises(BadRequest, match=detail):
        read_issue_update(dc_body(key=key), None)
    assert read_issue_update(dc_body(key="k" * 128), None) is not None


def test_W5_8_1_a_data_center_assignee_without_key_is_unidentified_not_named_by_name() -> None:
    # `name` changes when the user is renamed; only the key identifies a DC user.
    record = read_issue_update(dc_body(key=None), None)
    assert record is not None
    delivery = Delivery.parse(record.record, delivery_id="d", tenant_id=1)
    assert delivery.assignee == Assignee(None, "dee@corp.example")


# -- the one predicate -----------------------------------------------------------------------


def a_site(
    credential: SiteCredential | None,
    flavor: JiraFlavor = JiraFlavor.CLOUD,
    *,
    tenant_id: int = 1,
) -> Tenant:
    """A site of either transport: Connect (`credential` None) or webhook (#13)."""
    return Tenant(
        id=tenant_id,
        client_key=f"site-{tenant_id}",
        base_url="https://jira.corp.example/jira" if flavor is JiraFlavor.DATA_CENTER
        else "https://acme.atlassian.net",
        display_url=None,
        status=TenantStatus.INSTALLED,
        installed_at=datetime(2026, 1, 1, tzinfo=UTC),
        shared_secret=None if credential is not None else "connect-shared-secret-0123456789",
        transport="connect" if credential is None else "webhook",
        site_credential=credential,
        flavor=flavor,
    )


PAT = PersonalAccessToken("dc-personal-access-token-0123456789abcdef")
API_TOKEN = ApiToken("bot@acme.example", "cloud-api-token-0123456789abcdef")


@pytest.mark.parametrize(
    ("site", "scope", "expected"),
    [
        (a_site(None), False, False),
        (a_site(None), True, True),
        (a_site(API_TOKEN), False, True),
        (a_site(PAT, JiraFlavor.DATA_CENTER), False, True),
        (a_site(PAT, JiraFlavor.DATA_CENTER), True, True),
    ],
    ids=["connect", "connect-with-scope", "cloud-token", "data-center", "data-center-scope"],
)
def test_W5_8_1_who_may_look_a_hidden_email_up(site: Tenant, scope: bool, expected: bool) -> None:
    assert may_look_up_email(site, use_email_scope=scope) is expected


# -- the worker, end state in Sentry and the journal -----------------------------------------


class SitesAndTenants:
    """The tenant store the worker reads, holding webhook sites beside the installed tenants
    (as the sites store of #13 will; the memory fake has no way to add one yet)."""

    def __init__(self, tenants: TenantStore, *sites: Tenant) -> None:
        self._tenants = tenants
        self._sites = {site.id: site for site in sites}

    async def get(self, tenant_id: int) -> Tenant | None:
        return self._sites.get(tenant_id) or await self._tenants.get(tenant_id)

    async def by_client_key(self, client_key: str) -> Tenant | None:
        found = [s for s in self._sites.values() if s.client_key == client_key]
        return found[0] if found else await self._tenants.by_client_key(client_key)

    async def list_all(self) -> list[Tenant]:
        return sorted([*self._sites.values(), *await self._tenants.list_all()],
                      key=lambda t: t.id)


def world_with(site: Tenant, *, use_email_scope: bool = False) -> SyncWorld:
    world = SyncWorld(use_email_scope=use_email_scope)
    world.ports = attrs.evolve(world.ports, tenants=SitesAndTenants(world.tenants, site))
    world.jira.site(site).statuses = [
        JiraStatus(IN_PROGRESS, "In Progress", "indeterminate"),
        JiraStatus(DONE, "Done", "done"),
        JiraStatus(REOPENED, "Reopened", "new"),
    ]
    return world


def updates(world: SyncWorld) -> list[tuple[str, str, dict[str, object]]]:
    return [(c.org, c.target, c.payload or {}) for c in world.sentry.updates()]


def email_lookups(world: SyncWorld) -> list[tuple[Any, ...]]:
    return [c.args for c in world.jira.calls if c.method == "user_email"]


DC_SITE = a_site(PAT, JiraFlavor.DATA_CENTER)
CLOUD_SITE = a_site(API_TOKEN)


async def test_W5_8_1_a_data_center_status_change_into_done_resolves() -> None:
    world = world_with(DC_SITE)
    await world.bind(DC_SITE, "acme", issues={"OPS-7": ["4711"]})
    await deliver(world, DC_SITE, dc_status_body())
    await world.run()
    assert updates(world) == [("acme", "4711", {"status": "resolved"})]
    [(kind, outcome, org, detail)] = await world.journal(DC_SITE)
    assert (kind, outcome, org) == ("status", "applied", "acme")
    assert "entered the done category" in detail
    assert [c.method for c in world.jira.calls] == ["statuses"]


async def test_W5_8_1_a_data_center_assignee_mapped_by_key_is_assigned() -> None:
    world = world_with(DC_SITE)
    await world.bind(DC_SITE, "acme", issues={"OPS-7": ["4711"]})
    await world.map_account(DC_SITE, "acme", DC_KEY, "7")
    world.sentry.add_member("acme", "7", [])  # no e-mail: only the mapping can find this user
    await deliver(world, DC_SITE, dc_body())
    await world.run()
    assert updates(world) == [("acme", "4711", {"assignedTo": "user:7"})]
    assert [c.operation for c in world.sentry.calls] == [UPDATE]  # no member search
    [(_, outcome, _, detail)] = await world.journal(DC_SITE)
    assert outcome == "applied" and f"Jira account {DC_KEY} is mapped to Sentry user 7" in detail
    assert email_lookups(world) == []


async def test_W5_8_1_a_data_center_legacy_key_like_john_smith_is_mapped_too() -> None:
    world = world_with(DC_SITE)
    await world.bind(DC_SITE, "acme", issues={"OPS-7": ["4711"]})
    await world.map_account(DC_SITE, "acme", "john.smith", "8")
    await deliver(world, DC_SITE, dc_body(key="john.smith", emailAddress=None))
    await world.run()
    assert updates(world) == [("acme", "4711", {"assignedTo": "user:8"})]


async def test_W5_8_1_a_data_center_assignee_unmapped_is_assigned_by_verified_email() -> None:
    world = world_with(DC_SITE)
    await world.bind(DC_SITE, "acme", issues={"OPS-7": ["4711"]})
    world.sentry.add_member("acme", "42", [("Dee@corp.example", True)])
    world.sentry.add_member("acme", "43", [("dee@corp.example", False)])  # unverified: no match
    await deliver(world, DC_SITE, dc_body())
    await world.run()
    assert updates(world) == [("acme", "4711", {"assignedTo": "user:42"})]
    [(_, outcome, _, detail)] = await world.journal(DC_SITE)
    assert outcome == "applied"
    assert f"the e-mail of Jira account {DC_KEY} (from the webhook)" in detail
    assert "dee@corp.example" not in detail.lower()
    assert email_lookups(world) == []  # the payload had it: Jira is not asked


async def test_W5_8_1_a_data_center_assignee_with_the_email_hidden_is_looked_up_by_key() -> None:
    world = world_with(DC_SITE)
    await world.bind(DC_SITE, "acme", issues={"OPS-7": ["4711"]})
    world.sentry.add_member("acme", "42", [("dee@corp.example", True)])
    world.jira.site(DC_SITE).emails[DC_KEY] = "dee@corp.example"
    await deliver(world, DC_SITE, dc_body(emailAddress=None))
    await world.run()
    assert email_lookups(world) == [(DC_KEY,)]  # `/rest/api/2/user?key=` in the real adapter
    assert updates(world) == [("acme", "4711", {"assignedTo": "user:42"})]


async def test_W5_8_1_a_cloud_webhook_site_looks_a_hidden_email_up_and_assigns() -> None:
    world = world_with(CLOUD_SITE)  # the e-mail scope is off: it is a Connect setting
    await world.bind(CLOUD_SITE, "acme", issues={"APP-123": ["1"]})
    world.sentry.add_member("acme", "42", [("grace@example.com", True)])
    world.jira.site(CLOUD_SITE).emails[CLOUD_ACCOUNT] = "grace@example.com"
    body = fixture_json("jira-issue-updated-assignee.json")
    del body["issue"]["fields"]["assignee"]["emailAddress"]  # hidden by the user's profile
    await deliver(world, CLOUD_SITE, body)
    await world.run()
    assert email_lookups(world) == [(CLOUD_ACCOUNT,)]  # `/rest/api/3/user?accountId=`
    assert updates(world) == [("acme", "1", {"assignedTo": "user:42"})]
    [(_, outcome, _, detail)] = await world.journal(CLOUD_SITE)
    assert outcome == "applied" and "from Jira's e-mail API" in detail
    assert "grace@example.com" not in detail  # no address in the journal


async def test_W5_8_1_an_email_jira_keeps_hidden_is_unresolvable_not_a_failure() -> None:
    world = world_with(CLOUD_SITE)
    await world.bind(CLOUD_SITE, "acme", issues={"APP-123": ["1"]})
    world.sentry.add_member("acme", "42", [("grace@example.com", True)])
    body = fixture_json("jira-issue-updated-assignee.json")
    del body["issue"]["fields"]["assignee"]["emailAddress"]
    await deliver(world, CLOUD_SITE, body)
    await world.run()  # the fake answers None, as the adapter does for a 403 / 404
    assert email_lookups(world) == [(CLOUD_ACCOUNT,)]
    assert updates(world) == []
    [(kind, outcome, _, detail)] = await world.journal(CLOUD_SITE)
    assert (kind, outcome) == ("assignee", "unresolvable")
    assert "Jira hides the e-mail: no change" in detail and "scope" not in detail
    assert (await world.inbox.stats(world.clock.now())).pending == 0  # settled, no retry


async def test_W5_a_connect_site_without_the_email_scope_still_does_not_look_up() -> None:
    world = SyncWorld(use_email_scope=False)
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]})
    world.sentry.add_member("acme", "42", [("grace@example.com", True)])
    world.jira.site(tenant).emails[CLOUD_ACCOUNT] = "grace@example.com"
    body = fixture_json("jira-issue-updated-assignee.json")
    del body["issue"]["fields"]["assignee"]["emailAddress"]
    await deliver(world, tenant, body)
    await world.run()
    assert email_lookups(world) == []
    assert updates(world) == []
    [(_, outcome, _, detail)] = await world.journal(tenant)
    assert outcome == "unresolvable" and "the e-mail scope is off" in detail
    assert MEMBERS not in [c.operation for c in world.sentry.calls]
