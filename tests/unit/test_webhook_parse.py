"""W2–W4 pure pieces: body validation, delivery id, relevance."""

from __future__ import annotations

import copy
from typing import Any

import attrs
import pytest
from tests.support.paths import fixture_json

from core.issue_update.webhook import delivery_id, parse_issue_update
from core.model.errors import BadRequest


def status_body() -> dict[str, Any]:
    return copy.deepcopy(fixture_json("jira-issue-updated-status.json"))


def test_W2_the_shared_fixtures_parse() -> None:
    for name in ("status", "assignee", "moved"):
        update = parse_issue_update(fixture_json(f"jira-issue-updated-{name}.json"))
        assert update.issue_id == "20417"
        assert update.is_relevant


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
    ],
)
def test_W2_malformed_bodies_are_refused(mutate: Any, detail: str) -> None:
    body = status_body()
    mutate(body)
    with pytest.raises(BadRequest, match=detail):
        parse_issue_update(body)


@pytest.mark.parametrize("body", [[], "text", 3, None])
def test_W2_a_body_that_is_not_an_object_is_refused(body: Any) -> None:
    with pytest.raises(BadRequest, match="JSON object"):
        parse_issue_update(body)


def test_W4_another_webhook_event_is_not_relevant() -> None:
    body = status_body()
    body["webhookEvent"] = "jira:issue_created"
    assert not parse_issue_update(body).is_relevant


@pytest.mark.parametrize("items", [[], [{"field": "summary"}], [{"field": "resolution"}],
                                   [{"field": "Status"}], [{"nofield": 1}], "junk"])
def test_W4_changelogs_without_status_assignee_or_key_are_not_relevant(items: Any) -> None:
    body = status_body()
    body["changelog"]["items"] = items
    assert not parse_issue_update(body).is_relevant


def test_W4_no_changelog_is_not_relevant() -> None:
    body = status_body()
    del body["changelog"]
    assert not parse_issue_update(body).is_relevant


def test_W3_the_header_is_the_delivery_id() -> None:
    update = parse_issue_update(status_body())
    assert delivery_id(update, "b7c1f0e2-1a2b-4c3d-9e8f-0a1b2c3d4e5f") == (
        "b7c1f0e2-1a2b-4c3d-9e8f-0a1b2c3d4e5f")


def test_W3_without_the_header_the_id_hashes_issue_changelog_and_timestamp() -> None:
    body = status_body()
    first = delivery_id(parse_issue_update(body), None)
    assert first == delivery_id(parse_issue_update(copy.deepcopy(body)), "")
    assert first.startswith("sha256:")
    for change in ({"timestamp": 1}, {"changelog": {"id": "1", "items": []}}):
        other = status_body()
        other.update(change)
        assert delivery_id(parse_issue_update(other), None) != first
    other = status_body()
    other["issue"]["id"] = "99"
    assert delivery_id(parse_issue_update(other), None) != first


@pytest.mark.parametrize("header", ["x" * 129, "a\nb", "tab\there"])
def test_W3_a_malformed_header_is_refused(header: str) -> None:
    with pytest.raises(BadRequest):
        delivery_id(parse_issue_update(status_body()), header)


@pytest.mark.parametrize("kind", ["status", "assignee", "moved"])
def test_W4_the_recorded_payload_means_the_same_to_the_worker(kind: str) -> None:
    from core.issue_update import Delivery
    from core.issue_update.webhook import payload_to_record

    body = fixture_json(f"jira-issue-updated-{kind}.json")
    body["issue"]["fields"]["description"] = "customer text " * 500
    record = payload_to_record(body)
    original = Delivery.parse(body, delivery_id="d", tenant_id=1)
    relevant = tuple(i for i in original.items if i.field in {"status", "assignee", "Key"})
    # Same delivery for the worker; only changelog items it never reads are left out.
    assert Delivery.parse(record, delivery_id="d", tenant_id=1) == attrs.evolve(
        original, items=relevant)
    assert "customer text" not in str(record)
    assert parse_issue_update(record).is_relevant


@pytest.mark.parametrize(
    "assignee", [None, {"accountId": "a1"}, {"emailAddress": "x@example.com"}, "junk"])
def test_W5_assignee_presence_and_null_survive_recording(assignee: Any) -> None:
    from core.issue_update.webhook import payload_to_record

    body = status_body()
    body["issue"]["fields"]["assignee"] = assignee
    assert payload_to_record(body)["issue"]["fields"]["assignee"] == assignee
    del body["issue"]["fields"]["assignee"]
    assert "assignee" not in payload_to_record(body)["issue"]["fields"]
