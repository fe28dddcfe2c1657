"""Parsing a recorded `jira:issue_updated` body into a Delivery (W4–W7 inputs)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from tests.support.paths import fixture_json

from core.issue_update import Assignee, ChangeItem, Delivery, parse_jira_time
from core.model.errors import BadRequest


def parse(payload: Any) -> Delivery:
    return Delivery.parse(payload, delivery_id="d-1", tenant_id=7)


def test_status_fixture_is_parsed_into_the_fields_the_sync_needs() -> None:
    delivery = parse(fixture_json("jira-issue-updated-status.json"))
    assert (delivery.id, delivery.tenant_id) == ("d-1", 7)
    assert (delivery.issue_id, delivery.issue_key, delivery.project_id) == (
        "20417",
        "APP-123",
        "10000",
    )
    assert delivery.updated == datetime(2025, 11, 28, 9, 0, tzinfo=UTC)
    assert delivery.items == (
        ChangeItem("resolution", None, None, "10000", "Done"),
        ChangeItem("status", "3", "In Progress", "10101", "Done"),
    )
    assert delivery.assignee is None  # "assignee": null
    assert delivery.last_item("status") == delivery.items[1]
    assert delivery.rekeys == ()
    assert delivery.link_keys == ("APP-123",)


def test_assignee_fixture_carries_account_id_and_email() -> None:
    delivery = parse(fixture_json("jira-issue-updated-assignee.json"))
    assert delivery.assignee == Assignee("5b10ac8d82e05b22cc7d4ef5", "grace@example.com")
    assert delivery.last_item("assignee") is not None


def test_W7_moved_fixture_names_the_old_key_to_re_key() -> None:
    delivery = parse(fixture_json("jira-issue-updated-moved.json"))
    assert delivery.rekeys == (("APP-123", "OPS-7"),)
    assert delivery.link_keys == ("OPS-7", "APP-123")
    assert delivery.project_id == "10002"


def test_a_hidden_email_and_a_missing_assignee() -> None:
    payload = fixture_json("jira-issue-updated-assignee.json")
    del payload["issue"]["fields"]["assignee"]["emailAddress"]
    assert parse(payload).assignee == Assignee("5b10ac8d82e05b22cc7d4ef5", None)
    del payload["issue"]["fields"]["assignee"]
    assert parse(payload).assignee is None


def test_an_assignee_object_without_identity_is_still_an_assignee() -> None:
    payload = fixture_json("jira-issue-updated-assignee.json")
    payload["issue"]["fields"]["assignee"] = {"displayName": "Someone"}
    assert parse(payload).assignee == Assignee(None, None)  # unresolvable later, never unassign


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025-11-28T09:00:00.000+0000", datetime(2025, 11, 28, 9, 0, tzinfo=UTC)),
        (
            "2025-11-28T10:00:00.123+0100",
            datetime(2025, 11, 28, 10, 0, 0, 123000, tzinfo=timezone(timedelta(hours=1))),
        ),
        ("2025-11-28T09:00:00Z", datetime(2025, 11, 28, 9, 0, tzinfo=UTC)),
        ("2025-11-28T09:00:00.000", None),  # no offset: not comparable
        ("yesterday", None),
        ("", None),
        (1764320400000, None),
        (None, None),
    ],
)
def test_jira_times(raw: Any, expected: datetime | None) -> None:
    assert parse_jira_time(raw) == expected


def test_missing_or_unparsable_updated_is_none() -> None:
    payload = fixture_json("jira-issue-updated-status.json")
    payload["issue"]["fields"]["updated"] = "28/11/2025"
    assert parse(payload).updated is None
    del payload["issue"]["fields"]["updated"]
    assert parse(payload).updated is None


def test_optional_parts_may_be_missing_or_malformed() -> None:
    base = fixture_json("jira-issue-updated-status.json")
    bare = {"webhookEvent": "jira:issue_updated", "issue": {"id": "1", "key": "A-1"}}
    delivery = parse(bare)
    assert (delivery.items, delivery.project_id, delivery.updated, delivery.assignee) == (
        (),
        None,
        None,
        None,
    )

    odd = copy.deepcopy(base)
    odd["changelog"]["items"] = [
        "not an item",
        {"fieldtype": "jira"},
        {"field": "status", "from": 3, "to": 10101, "fromString": None},
    ]
    odd["issue"]["fields"]["project"] = {"id": 10000}
    delivery = parse(odd)
    assert delivery.items == (ChangeItem("status", "3", None, "10101", None),)
    assert delivery.project_id == "10000"

    for changelog in (None, "x", {"items": "x"}, {"items": None}):
        odd["changelog"] = changelog
        assert parse(odd).items == ()
    odd["issue"]["fields"] = "not an object"
    assert parse(odd).project_id is None


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        {},
        {"issue": "x"},
        {"issue": {"id": "1"}},
        {"issue": {"key": "A-1"}},
        {"issue": {"id": 1, "key": "A-1"}},
    ],
)
def test_a_body_without_issue_id_and_key_is_refused(payload: Any) -> None:
    with pytest.raises(BadRequest):
        parse(payload)


def test_a_key_item_without_both_keys_is_not_a_re_key() -> None:
    payload = fixture_json("jira-issue-updated-moved.json")
    payload["changelog"]["items"][1]["fromString"] = None
    delivery = parse(payload)
    assert delivery.rekeys == ()
    assert delivery.link_keys == ("OPS-7",)
