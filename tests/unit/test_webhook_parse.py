"""W2–W4 on the ack path: body validation, relevance, the delivery id and the bounded record,
all read once by `read_issue_update`."""

from __future__ import annotations

import copy
from typing import Any

import attrs
import pytest
from tests.support.paths import fixture_json

from core.issue_update.delivery import Delivery, IncomingDelivery, read_issue_update
from core.json_body import encode_json_body
from core.model.errors import BadRequest


def status_body() -> dict[str, Any]:
    return copy.deepcopy(fixture_json("jira-issue-updated-status.json"))


def read(body: Any, header: str | None = None) -> IncomingDelivery:
    incoming = read_issue_update(body, header)
    assert incoming is not None, "not relevant"
    return incoming


def test_W2_the_shared_fixtures_parse() -> None:
    for name, key in (("status", "APP-123"), ("assignee", "APP-123"), ("moved", "OPS-7")):
        incoming = read(fixture_json(f"jira-issue-updated-{name}.json"))
        assert (incoming.issue_id, incoming.issue_key) == ("20417", key)


@pytest.mark.parametrize(
    ("mutate", "detail"),
    [
        (lambda b: b.clear() or b.update({"x": 1}), "webhookEvent must be a string"),
        (lambda b: b.update(webhookEvent=7), "webhookEvent must be a string"),
        (lambda b: b.pop("issue"), "issue must be an object"),
        (lambda b: b.update(issue=[]), "issue must be an object"),
        (lambda b: b["issue"].pop("key"), "issue.key must be a string"),
        (lambda b: b["issue"].update(key=123), "issue.key must be a string"),
        (lambda b: b["issue"].pop("id"), "issue.id must be a string"),
        (lambda b: b["issue"].update(id=20417), "issue.id must be a string"),
        (lambda b: b["issue"].update(fields=None), "issue.fields must be an object"),
        (lambda b: b["issue"].pop("fields"), "issue.fields must be an object"),
        (lambda b: b["issue"].update(key="APP-\x00"), "issue.key must be printable text"),
        (lambda b: b["issue"].update(key="APP-1\n"), "issue.key must be printable text"),
        (lambda b: b["issue"].update(id="20417\x00"), "issue.id must be printable text"),
        (lambda b: b["issue"].update(id="\x1b[2J"), "issue.id must be printable text"),
    ],
)
def test_W2_malformed_bodies_are_refused(mutate: Any, detail: str) -> None:
    body = status_body()
    mutate(body)
    with pytest.raises(BadRequest, match=detail):
        read_issue_update(body, None)


@pytest.mark.parametrize("body", [[], "text", 3, None])
def test_W2_a_body_that_is_not_an_object_is_refused(body: Any) -> None:
    with pytest.raises(BadRequest, match="JSON object"):
        read_issue_update(body, None)


def test_W2_a_malformed_body_is_refused_even_when_it_is_not_relevant() -> None:
    body = status_body()
    body["webhookEvent"] = "jira:issue_created"
    body["issue"]["fields"] = []
    with pytest.raises(BadRequest, match=r"issue\.fields must be an object"):
        read_issue_update(body, None)


def test_W4_another_webhook_event_is_not_relevant() -> None:
    body = status_body()
    body["webhookEvent"] = "jira:issue_created"
    assert read_issue_update(body, None) is None


@pytest.mark.parametrize("items", [[], [{"field": "summary"}], [{"field": "resolution"}],
                                   [{"field": "Status"}], [{"nofield": 1}], "junk"])
def test_W4_changelogs_without_status_assignee_or_key_are_not_relevant(items: Any) -> None:
    body = status_body()
    body["changelog"]["items"] = items
    assert read_issue_update(body, None) is None


def test_W4_no_changelog_is_not_relevant() -> None:
    body = status_body()
    del body["changelog"]
    assert read_issue_update(body, None) is None


def test_W4_an_irrelevant_body_is_ignored_before_any_bound_or_header_check() -> None:
    body = status_body()
    body["changelog"]["items"] = [{"field": "summary"}]
    body["issue"]["key"] = "K" * 1000
    assert read_issue_update(body, "bad\nheader") is None


def test_W3_the_header_is_the_delivery_id() -> None:
    assert read(status_body(), " b7c1f0e2-1a2b-4c3d-9e8f-0a1b2c3d4e5f ").id == (
        "b7c1f0e2-1a2b-4c3d-9e8f-0a1b2c3d4e5f")


def test_W3_without_the_header_the_id_hashes_issue_changelog_and_timestamp() -> None:
    body = status_body()
    first = read(body).id
    assert first == read(copy.deepcopy(body), "").id == read(body, "   ").id
    assert first == "sha256:bb27386e5de94c41d08effe44fb4efde"  # stable across releases
    for change in ({"timestamp": 1}, {"changelog": {"id": "1", "items": [{"field": "Key"}]}}):
        other = status_body()
        other.update(change)
        assert read(other).id != first
    other = status_body()
    other["issue"]["id"] = "99"
    assert read(other).id != first


@pytest.mark.parametrize("header", ["x" * 65, "x" * 129, "a\nb", "tab\there"])
def test_W3_a_malformed_header_is_refused(header: str) -> None:
    with pytest.raises(BadRequest, match="X-Atlassian-Webhook-Identifier is malformed"):
        read_issue_update(status_body(), header)


def test_W3_a_malformed_header_is_named_before_an_oversized_field() -> None:
    body = status_body()
    body["issue"]["key"] = "K" * 256
    with pytest.raises(BadRequest, match="X-Atlassian-Webhook-Identifier"):
        read_issue_update(body, "a\nb")
    with pytest.raises(BadRequest, match=r"issue\.key must be at most 255 characters"):
        read_issue_update(body, "fine")


def test_the_record_of_the_status_fixture_is_stored_byte_for_byte_as_before() -> None:
    # Rows recorded by earlier releases and rows recorded now must read back the same way.
    assert encode_json_body(read(status_body()).record) == (
        b'{"webhookEvent":"jira:issue_updated","issue":{"id":"20417","key":"APP-123",'
        b'"fields":{"project":{"id":"10000","key":"APP"},'
        b'"updated":"2025-11-28T09:00:00.000+0000","assignee":null}},'
        b'"timestamp":1764320400000,"changelog":{"id":"88231","items":[{"field":"status",'
        b'"from":"3","fromString":"In Progress","to":"10101","toString":"Done"}]}}')


@pytest.mark.parametrize("kind", ["status", "assignee", "moved"])
def test_W4_the_recorded_payload_means_the_same_to_the_worker(kind: str) -> None:
    body = fixture_json(f"jira-issue-updated-{kind}.json")
    body["issue"]["fields"]["description"] = "customer text " * 500
    record = read(body).record
    original = Delivery.parse(body, delivery_id="d", tenant_id=1)
    relevant = tuple(i for i in original.items if i.field in {"status", "assignee", "Key"})
    # Same delivery for the worker; only changelog items it never reads are left out.
    assert Delivery.parse(record, delivery_id="d", tenant_id=1) == attrs.evolve(
        original, items=relevant)
    assert "customer text" not in str(record)
    assert read(record).record == record  # a record is relevant, and its own record


@pytest.mark.parametrize(
    "assignee", [None, {"accountId": "a1"}, {"emailAddress": "x@example.com"}, "junk"])
def test_W5_assignee_presence_and_null_survive_recording(assignee: Any) -> None:
    body = status_body()
    body["issue"]["fields"]["assignee"] = assignee
    assert read(body).record["issue"]["fields"]["assignee"] == assignee
    del body["issue"]["fields"]["assignee"]
    assert "assignee" not in read(body).record["issue"]["fields"]


@pytest.mark.parametrize(
    ("timestamp", "detail"),
    [
        (10**64 - 1, None),            # 64 digits
        (10**64, "at most 64"),        # 65
        (-(10**63 - 1), None),         # a sign and 63 digits
        (-(10**63), "at most 64"),     # a sign and 64
        (True, None), (1.5e300, None), (None, None),
        ("t" * 64, None), ("t" * 65, "at most 64"),
        ([1], "timestamp must be a string"), ({"t": 1}, "timestamp must be a string"),
    ],
)
def test_bounded_records_count_a_number_by_its_text(timestamp: Any, detail: str | None) -> None:
    body = status_body()
    body["timestamp"] = timestamp
    if detail is None:
        assert read(body).record["timestamp"] == timestamp
    else:
        with pytest.raises(BadRequest, match=detail):
            read(body)


def test_bounded_records_name_the_first_offending_field_in_record_order() -> None:
    body = status_body()
    body["changelog"]["items"][1]["toString"] = "s" * 256
    body["changelog"]["id"] = ["not", "a", "scalar"]
    body["issue"]["fields"]["project"]["key"] = "P" * 256
    with pytest.raises(BadRequest, match=r"^issue.fields.project.key must be at most 255"):
        read(body)
    body["issue"]["fields"]["project"]["key"] = "APP"
    with pytest.raises(BadRequest, match=r"^changelog.id must be a string$"):
        read(body)
    body["changelog"]["id"] = 7
    with pytest.raises(BadRequest, match=r"^changelog.items\[\].toString must be at most 255"):
        read(body)
