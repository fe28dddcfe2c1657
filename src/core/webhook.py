"""handle issue update, part 1: the acknowledgement path (W2–W4).

Pure pieces only: validating the body, the delivery id and relevance. The use case that
verifies the token (W1) and records the delivery (W3, W10) lives in `core/acknowledge.py`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs

from core.errors import BadRequest
from core.sync.delivery import RELEVANT_FIELDS  # W4: one definition for the ack and the worker

ISSUE_UPDATED = "jira:issue_updated"
MAX_DELIVERY_ID = 128


@attrs.frozen
class IssueUpdate:
    """The parts of a validated `jira:issue_updated` body the ack path needs."""

    webhook_event: str
    issue_id: str
    issue_key: str
    changelog_id: str | None
    timestamp: str | None
    changed_fields: frozenset[str]

    @property
    def is_relevant(self) -> bool:
        """W4: a changelog item on `status`, `assignee` or `Key`."""
        return self.webhook_event == ISSUE_UPDATED and bool(self.changed_fields & RELEVANT_FIELDS)


def parse_issue_update(body: Any) -> IssueUpdate:
    """W2: the body must be an object with webhookEvent, issue.key, issue.id, issue.fields."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    event = body.get("webhookEvent")
    if not isinstance(event, str):
        raise BadRequest("webhookEvent must be a string")
    issue = body.get("issue")
    if not isinstance(issue, dict):
        raise BadRequest("issue must be an object")
    key, issue_id, fields = issue.get("key"), issue.get("id"), issue.get("fields")
    if not isinstance(key, str) or not key:
        raise BadRequest("issue.key must be a string")
    if not isinstance(issue_id, str) or not issue_id:
        raise BadRequest("issue.id must be a string")
    if not isinstance(fields, dict):
        raise BadRequest("issue.fields must be an object")
    changed: set[str] = set()
    changelog_id: str | None = None
    changelog = body.get("changelog")
    if isinstance(changelog, dict):
        raw_id = changelog.get("id")
        changelog_id = None if raw_id is None else str(raw_id)
        items = changelog.get("items")
        if isinstance(items, list):
            changed = {item["field"] for item in items
                       if isinstance(item, dict) and isinstance(item.get("field"), str)}
    timestamp = body.get("timestamp")
    return IssueUpdate(
        webhook_event=event,
        issue_id=issue_id,
        issue_key=key,
        changelog_id=changelog_id,
        timestamp=None if timestamp is None else str(timestamp),
        changed_fields=frozenset(changed),
    )


_ITEM_KEYS = ("field", "from", "fromString", "to", "toString")
_ASSIGNEE_KEYS = ("accountId", "emailAddress", "displayName")


def payload_to_record(body: dict[str, Any]) -> dict[str, Any]:
    """The part of a validated body the worker needs (W5–W7), in the body's own shape.

    Real deliveries carry every field of the issue (descriptions, comments, custom fields:
    often tens of kilobytes); the sync needs a few. Recording only those keeps the insert
    on the hot path small and keeps customer text out of the database.
    """
    issue = body["issue"]
    fields = issue["fields"]
    kept_fields: dict[str, Any] = {}
    project = fields.get("project")
    if isinstance(project, dict):
        kept_fields["project"] = {k: project[k] for k in ("id", "key") if k in project}
    if "updated" in fields:
        kept_fields["updated"] = fields["updated"]
    if "assignee" in fields:
        assignee = fields["assignee"]
        kept_fields["assignee"] = (
            {k: assignee[k] for k in _ASSIGNEE_KEYS if k in assignee}
            if isinstance(assignee, dict) else assignee
        )
    record: dict[str, Any] = {
        "webhookEvent": body["webhookEvent"],
        "issue": {"id": issue["id"], "key": issue["key"], "fields": kept_fields},
    }
    if "timestamp" in body:
        record["timestamp"] = body["timestamp"]
    changelog = body.get("changelog")
    if isinstance(changelog, dict):
        items = changelog.get("items")
        record["changelog"] = {
            "id": changelog.get("id"),
            "items": [
                {k: item[k] for k in _ITEM_KEYS if k in item}
                for item in (items if isinstance(items, list) else ())
                if isinstance(item, dict) and item.get("field") in RELEVANT_FIELDS
            ],
        }
    return record


def delivery_id(update: IssueUpdate, header: str | None) -> str:
    """W3: the X-Atlassian-Webhook-Identifier header, else a hash of (issue, changelog, time)."""
    if header is not None:
        header = header.strip()
        if header:
            if len(header) > MAX_DELIVERY_ID or not header.isprintable():
                raise BadRequest("X-Atlassian-Webhook-Identifier is malformed")
            return header
    basis = "\x1f".join([update.issue_id, update.changelog_id or "", update.timestamp or ""])
    return "sha256:" + hashlib.sha256(basis.encode()).hexdigest()[:32]
