"""Values PostgreSQL cannot hold (docs/security.md, "Malformed identifiers"): `text` holds no
NUL and no value that is not UTF-8 (a lone surrogate), so the core refuses such a value
where it reads an identifier (400, on every engine alike) and replaces it where it writes
free text (the journal), instead of letting a store fail with a 500 or a worker crash."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from tests.support.builders import a_settings
from tests.support.connect_tokens import hs256_token
from tests.support.paths import fixture_json
from tests.support.sync_world import PROJECT, SyncWorld, issue_updated, key_item, status_item

from core.connect.tokens import parse_token
from core.issue_update.acknowledge import acknowledge_issue_update
from core.issue_update.delivery import read_issue_update
from core.lifecycle.install import InstallBody
from core.model.errors import BadRequest, Unauthorized
from core.model.tenant import VerifiedSite
from core.model.text import storable_text

# A NUL, another C0 control, a C1 control and a lone surrogate: none is part of an id.
UNSTORABLE = ["\x00", "\x1b", "\x85", "\ud800"]


def status_body() -> dict[str, Any]:
    return copy.deepcopy(fixture_json("jira-issue-updated-status.json"))


def assignee_body() -> dict[str, Any]:
    return copy.deepcopy(fixture_json("jira-issue-updated-assignee.json"))


def moved_body() -> dict[str, Any]:
    return copy.deepcopy(fixture_json("jira-issue-updated-moved.json"))


def _item(body: dict[str, Any], field: str) -> dict[str, Any]:
    return next(i for i in body["changelog"]["items"] if i["field"] == field)


def _set_assignee(name: str, value: str) -> Any:
    def mutate(body: dict[str, Any]) -> None:
        body["issue"]["fields"]["assignee"] = {"accountId": "5b10ac8d82e05b22cc7d4ef5",
                                               "displayName": "Mia Krystof", name: value}
    return mutate


# (a body, how to put `bad` into it, the field the 400 names)
IDENTIFIERS: list[tuple[Any, Any, str]] = [
    (status_body, lambda b, bad: b["issue"]["fields"]["project"].update(id="10000" + bad),
     "issue.fields.project.id"),
    (status_body, lambda b, bad: b["issue"]["fields"]["project"].update(key="APP" + bad),
     "issue.fields.project.key"),
    (status_body, lambda b, bad: _set_assignee("accountId", "5b10" + bad)(b),
     "issue.fields.assignee.accountId"),
    (status_body, lambda b, bad: _set_assignee("key", "JIRAUSER10100" + bad)(b),
     "issue.fields.assignee.key"),
    (status_body, lambda b, bad: _set_assignee("emailAddress", "mia@acme.example" + bad)(b),
     "issue.fields.assignee.emailAddress"),
    (status_body, lambda b, bad: _item(b, "status").update({"from": "3" + bad}),
     r"changelog.items\[\].from"),
    (status_body, lambda b, bad: _item(b, "status").update(to=bad + "10101"),
     r"changelog.items\[\].to"),
    (assignee_body, lambda b, bad: _item(b, "assignee").update(to="5b10" + bad),
     r"changelog.items\[\].to"),
    (moved_body, lambda b, bad: _item(b, "Key").update(fromString="APP-123" + bad),
     r"changelog.items\[\].fromString"),
    (moved_body, lambda b, bad: _item(b, "Key").update(toString="OPS-7" + bad),
     r"changelog.items\[\].toString"),
    (status_body, lambda b, bad: b["changelog"].update(id="88231" + bad), "changelog.id"),
]


@pytest.mark.parametrize("bad", UNSTORABLE, ids=["nul", "escape", "c1", "surrogate"])
@pytest.mark.parametrize(("body", "mutate", "field"), IDENTIFIERS,
                         ids=[f"{b.__name__}:{f}" for b, _, f in IDENTIFIERS])
def test_W2_an_identifier_the_worker_keys_by_must_be_printable(
    body: Any, mutate: Any, field: str, bad: str,
) -> None:
    """The worker looks these up or stores them as keys (account mappings, links moved by
    W7, status map projects): a control character or a lone surrogate is a malformed value
    (400), not a store failure (500) on PostgreSQL."""
    value = body()
    assert read_issue_update(value, None) is not None  # the fixture itself is accepted
    mutate(value, bad)
    with pytest.raises(BadRequest, match=f"^{field} must be printable text$"):
        read_issue_update(value, None)


@pytest.mark.parametrize("bad", UNSTORABLE, ids=["nul", "escape", "c1", "surrogate"])
def test_W2_free_text_names_are_kept_as_sent(bad: str) -> None:
    """Status names and display names are never keys: they are kept (the record is JSON in a
    bytea column, where `\\u0000` is only six bytes), and the journal replaces what it cannot
    hold (below)."""
    body = status_body()
    _item(body, "status").update(fromString="In" + bad, toString="Done" + bad)
    _set_assignee("displayName", "Mia" + bad)(body)
    incoming = read_issue_update(body, None)
    assert incoming is not None
    item = incoming.record["changelog"]["items"][0]
    assert (item["fromString"], item["toString"]) == ("In" + bad, "Done" + bad)
    assert incoming.record["issue"]["fields"]["assignee"]["displayName"] == "Mia" + bad


def test_W2_a_printable_identifier_of_any_script_is_accepted() -> None:
    body = status_body()
    _set_assignee("key", "müller.ø")(body)
    body["issue"]["fields"]["project"]["key"] = "ПРОЕКТ"
    assert read_issue_update(body, None) is not None


def test_storable_text_replaces_only_what_postgresql_text_cannot_hold() -> None:
    assert storable_text("Done\x00 (10101)") == "Done\ufffd (10101)"
    assert storable_text("a\ud800b\udfffc") == "a\ufffdb\ufffdc"
    kept = "tab\there, new\nline, \x1b[2J, é, 😀, \u200d"
    assert storable_text(kept) is kept
    assert storable_text(kept).encode("utf-8")


def _install_body(**changes: Any) -> bytes:
    body = {"key": "sentry-jira.example.com.jira", "clientKey": "client-1",
            "sharedSecret": "s" * 40, "baseUrl": "https://acme.atlassian.net",
            "eventType": "installed", **changes}
    return json.dumps(body).encode()


@pytest.mark.parametrize("display_url", [
    "https://jira.acme.example/\x00", "https://jira.acme.example/a\x1fb",
    "https://jira.acme.example/\x7f", "https://jira.acme.example/\ud800",
])
def test_L1_a_display_url_holding_a_control_character_is_400(display_url: str) -> None:
    settings = a_settings().app
    assert InstallBody.parse(_install_body(displayUrl="https://jira.acme.example"), settings)
    with pytest.raises(BadRequest, match="displayUrl is not a valid URL"):
        InstallBody.parse(_install_body(displayUrl=display_url), settings)


async def test_W9_a_status_name_holding_a_nul_is_journalled_replaced() -> None:
    """The status names of a delivery reach the journal's detail: NUL becomes U+FFFD there, the
    write still happens."""
    world = SyncWorld()
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["4711"]},
                     status_map={PROJECT: {"resolve": ["10101"]}})
    item = status_item()
    item["toString"] = "Done\x00\ud800"
    await world.deliver(tenant, issue_updated(item), "d-1")
    await world.run()

    journal = await world.journal(tenant)
    assert [(kind, outcome) for kind, outcome, _, _ in journal] == [("status", "applied")]
    detail = journal[0][3]
    assert "Done\ufffd\ufffd (10101)" in detail
    assert detail.encode("utf-8")


async def test_W9_a_sentry_user_id_holding_a_nul_is_journalled_replaced() -> None:
    """A Sentry answer is outside input too: the member's user id is named in the journal."""
    world = SyncWorld()
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["4711"]})
    world.sentry.add_member("acme", "7\x00", [("mia@acme.example", True)])
    assignee = {"accountId": "5b10", "emailAddress": "mia@acme.example"}
    await world.deliver(tenant, issue_updated(
        {"field": "assignee", "from": None, "to": "5b10"}, assignee=assignee), "d-1")
    await world.run()

    details = [detail for _, _, _, detail in await world.journal(tenant)]
    assert details and all("\x00" not in detail for detail in details)
    assert any("Sentry user 7\ufffd" in detail for detail in details)


async def test_W7_W5_a_record_kept_before_the_rule_names_no_link_and_no_account() -> None:
    """The ack path refuses these identifiers now; a record stored before that rule still
    cannot break the worker: a moved-from key no engine can hold names no link, and such an
    account id is no account (W5: the e-mail decides), instead of lookups that fail on
    PostgreSQL at every attempt until a dead letter."""
    world = SyncWorld()
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["4711"]})
    await world.map_account(tenant, "acme", "5b10", "1")
    world.sentry.add_member("acme", "7", [("mia@acme.example", True)])
    await world.deliver(tenant, issue_updated(key_item("APP-1\x00", "APP-123")), "moved")
    await world.deliver(tenant, issue_updated(
        {"field": "assignee", "from": None, "to": "5b10\x00"},
        assignee={"accountId": "5b10\x00", "emailAddress": "mia@acme.example"}), "assigned")
    await world.run_until_idle()

    journal = await world.journal(tenant)
    assert ("delivery", "ignored", None, "the changelog changes no status or assignee") in journal
    [assigned] = [entry for entry in journal if entry[0] == "assignee"]
    assert assigned[:2] == ("assignee", "applied")
    assert "the e-mail of the Jira assignee" in assigned[3] and "Sentry user 7" in assigned[3]
    assert all("\x00" not in detail for _, _, _, detail in journal)


async def test_W2_a_lone_surrogate_in_free_text_is_400_with_the_core_decoder_too() -> None:
    """The adapters' JSON decoder refuses a `\\ud800` escape; the core's default one (library
    use, docs/embedding.md) lets it through, so its encoder refuses it: 400, nothing recorded
    — never a UnicodeEncodeError (500) nor a value no engine can store."""
    world = SyncWorld()
    tenant = await world.a_tenant()
    item = status_item()
    item["toString"] = "Done\ud800"
    raw = json.dumps(issue_updated(item)).encode()
    assert b"\\ud800" in raw
    with pytest.raises(BadRequest, match="lone surrogate"):
        await acknowledge_issue_update(VerifiedSite(tenant), raw, webhook_id="d-1",
                                       inbox=world.inbox, clock=world.clock)
    assert (await world.inbox.stats(world.clock.now())).pending == 0


@pytest.mark.parametrize("issuer", ["client-1\x00", "client-1\ud800", "client\x1b-1", "\u2028"])
def test_W1_an_unverified_issuer_that_no_client_key_can_be_is_401_before_any_lookup(
    issuer: str,
) -> None:
    """§4.2: the issuer names the secret, so it is read before the signature: a control
    character or a lone surrogate (a `\\ud800` escape in the claims) is 401 at once."""
    token = parse_token(hs256_token({"iss": issuer, "iat": 1, "exp": 2, "qsh": "x"}, "s" * 32),
                        "HS256")
    with pytest.raises(Unauthorized):
        token.unverified_issuer  # noqa: B018 - the property raises
