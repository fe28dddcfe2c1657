"""handle issue update, part 1: the acknowledgement path (W2–W4).

Pure pieces only: validating the body, the delivery id and relevance. The use case that
verifies the token (W1) and records the delivery (W3, W10) lives in `core/acknowledge.py`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs

from core.issue_update.delivery import (
    RELEVANT_FIELDS,  # W4: one definition for the ack and the worker
)
from core.model.errors import BadRequest

ISSUE_UPDATED = "jira:issue_updated"

# Bounded records (issue #11): every value the ack path records has a ceiling, checked before
# anything is stored; longer → 400. Far above what Jira sends, far below what hurts.
MAX_ID = 64            # issue, project, changelog and delivery ids
MAX_ACCOUNT_ID = 128   # Atlassian documents account ids up to 128 characters
MAX_KEY = 255          # issue and project keys
MAX_TIMESTAMP = 64     # `timestamp`, `fields.updated`
MAX_NAME = 255         # display names, e-mail addresses, a change's from/to strings
MAX_DELIVERY_ID = MAX_ID


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


# The kept keys of a relevant changelog item, with their bounds: `from`/`to` hold status ids
# or account ids, `fromString`/`toString` names or issue keys.
_ITEM_BOUNDS = (("field", MAX_NAME), ("from", MAX_ACCOUNT_ID), ("fromString", MAX_NAME),
                ("to", MAX_ACCOUNT_ID), ("toString", MAX_NAME))
_ASSIGNEE_BOUNDS = (("accountId", MAX_ACCOUNT_ID), ("emailAddress", MAX_NAME),
                    ("displayName", MAX_NAME))
_SCALARS = (str, int, float, bool, type(None))


def _bounded(name: str, value: Any, limit: int) -> Any:
    """A scalar kept in the record, at most `limit` characters long (as text); else 400."""
    if not isinstance(value, _SCALARS):
        raise BadRequest(f"{name} must be a string")
    if isinstance(value, str | int) and not isinstance(value, bool) and (
        len(value) if isinstance(value, str) else len(str(value))
    ) > limit:
        raise BadRequest(f"{name} must be at most {limit} characters")
    return value


def _kept(name: str, source: dict[str, Any], bounds: tuple[tuple[str, int], ...]
          ) -> dict[str, Any]:
    return {key: _bounded(f"{name}.{key}", source[key], limit)
            for key, limit in bounds if key in source}


def _relevant_item(item: Any) -> bool:
    # A `field` that is a list or an object is no relevant field (and cannot be hashed).
    return isinstance(item, dict) and isinstance(item.get("field"), str) \
        and item["field"] in RELEVANT_FIELDS


def payload_to_record(body: dict[str, Any]) -> dict[str, Any]:
    """The part of a validated body the worker needs (W5–W7), in the body's own shape.

    Real deliveries carry every field of the issue (descriptions, comments, custom fields:
    often tens of kilobytes); the sync needs a few. Recording only those keeps the insert
    on the hot path small and keeps customer text out of the database. Every kept value is a
    scalar within its bound (`MAX_*`), else BadRequest: nothing unbounded is recorded.
    """
    issue = body["issue"]
    fields = issue["fields"]
    kept_fields: dict[str, Any] = {}
    project = fields.get("project")
    if isinstance(project, dict):
        kept_fields["project"] = _kept(
            "issue.fields.project", project, (("id", MAX_ID), ("key", MAX_KEY)))
    if "updated" in fields:
        kept_fields["updated"] = _bounded("issue.fields.updated", fields["updated"],
                                          MAX_TIMESTAMP)
    if "assignee" in fields:
        assignee = fields["assignee"]
        kept_fields["assignee"] = (
            _kept("issue.fields.assignee", assignee, _ASSIGNEE_BOUNDS)
            if isinstance(assignee, dict)
            else _bounded("issue.fields.assignee", assignee, MAX_NAME)
        )
    record: dict[str, Any] = {
        "webhookEvent": body["webhookEvent"],
        "issue": {"id": _bounded("issue.id", issue["id"], MAX_ID),
                  "key": _bounded("issue.key", issue["key"], MAX_KEY), "fields": kept_fields},
    }
    if "timestamp" in body:
        record["timestamp"] = _bounded("timestamp", body["timestamp"], MAX_TIMESTAMP)
    changelog = body.get("changelog")
    if isinstance(changelog, dict):
        items = changelog.get("items")
        record["changelog"] = {
            "id": _bounded("changelog.id", changelog.get("id"), MAX_ID),
            "items": [
                _kept("changelog.items[]", item, _ITEM_BOUNDS)
                for item in (items if isinstance(items, list) else ())
                if _relevant_item(item)
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
