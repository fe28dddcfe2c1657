"""A `jira:issue_updated` delivery: read once on the ack path (W2–W4), recorded, and parsed
back by the worker into what the sync needs (W4–W7).

The ack path's strict reader (`read_issue_update`) checks the body and builds its record: the
only form of the delivery that is stored. The worker reads that record back with
`Delivery.parse`, so both ends see the same fields and the same relevance (W4).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from core.model.errors import BadRequest

# W4: the changelog fields this service acts on.
STATUS_FIELD = "status"
ASSIGNEE_FIELD = "assignee"
KEY_FIELD = "Key"
RELEVANT_FIELDS = frozenset({STATUS_FIELD, ASSIGNEE_FIELD, KEY_FIELD})
ISSUE_UPDATED = "jira:issue_updated"

# Bounded records (issue #11): every value the ack path records has a ceiling, checked before
# anything is stored; longer → 400. Far above what Jira sends, far below what hurts.
MAX_ID = 64            # issue, project, changelog and delivery ids
MAX_ACCOUNT_ID = 128   # Atlassian documents account ids up to 128; Data Center keys the same
MAX_KEY = 255          # issue and project keys
MAX_TIMESTAMP = 64     # `timestamp`, `fields.updated`
MAX_NAME = 255         # display names, e-mail addresses, a change's from/to strings
MAX_DELIVERY_ID = MAX_ID


@attrs.frozen
class ChangeItem:
    """One changelog item; `from_id`/`to_id` are Jira's `from`/`to` (ids), the rest names."""

    field: str
    from_id: str | None = None
    from_string: str | None = None
    to_id: str | None = None
    to_string: str | None = None


@attrs.frozen
class Assignee:
    """The issue's current assignee; `email` is None when Jira hides it.

    `account_id` is the user's identity on its site, the one account mappings (§A) are keyed
    by: `accountId` on Cloud, `key` on Data Center (§8.1), whose users have no `accountId`.
    """

    account_id: str | None
    email: str | None = None


@attrs.frozen
class Delivery:
    """One accepted delivery of one tenant (W3 id), as the worker processes it."""

    id: str
    tenant_id: int
    issue_id: str
    issue_key: str
    project_id: str | None = None
    updated: datetime | None = None  # `issue.fields.updated`; None when missing or unparsable
    items: tuple[ChangeItem, ...] = ()
    assignee: Assignee | None = None  # None when null or missing (W5: unassign)

    @classmethod
    def parse(cls, payload: Any, *, delivery_id: str, tenant_id: int) -> Delivery:
        """Read a webhook body; only `issue.id` and `issue.key` are required (W2), every other
        part may be missing or malformed and is then left empty."""
        issue = _object(payload, "issue") if isinstance(payload, Mapping) else None
        if issue is None:
            raise BadRequest("issue must be an object")
        issue_id, issue_key = issue.get("id"), issue.get("key")
        if not isinstance(issue_id, str) or not isinstance(issue_key, str):
            raise BadRequest("issue.id and issue.key must be strings")
        fields = _object(issue, "fields") or {}
        project = _object(fields, "project") or {}
        changelog = _object(payload, "changelog") or {}
        raw_items = changelog.get("items")
        items = (
            tuple(
                item for item in (_change_item(raw) for raw in raw_items or ()) if item is not None
            )
            if isinstance(raw_items, list)
            else ()
        )
        return cls(
            id=delivery_id,
            tenant_id=tenant_id,
            issue_id=issue_id,
            issue_key=issue_key,
            project_id=_text(project.get("id")),
            updated=parse_jira_time(fields.get("updated")),
            items=items,
            assignee=_assignee(fields.get("assignee")),
        )

    def last_item(self, field: str) -> ChangeItem | None:
        """The last changelog item of this field (Jira sends at most one; the last one wins)."""
        return next((i for i in reversed(self.items) if i.field == field), None)

    @property
    def rekeys(self) -> tuple[tuple[str, str], ...]:
        """W7: (old key, new key) of every `Key` item, in changelog order."""
        return tuple(
            (item.from_string, item.to_string)
            for item in self.items
            if item.field == KEY_FIELD
            and item.from_string
            and item.to_string
            and item.from_string != item.to_string
            # Links are looked up by the old key: one no engine can hold (a record kept
            # before the W2 rule) names no link ("Malformed identifiers").
            and item.from_string.isprintable()
        )

    @property
    def link_keys(self) -> tuple[str, ...]:
        """The issue keys whose links belong to this issue: its current key first, then the keys
        it was moved away from (W7). The shell loads the links of these keys before `decide`;
        after the re-key they all live under the current key."""
        keys = [self.issue_key]
        for old, new in reversed(self.rekeys):
            if new in keys and old not in keys:
                keys.append(old)
        return tuple(keys)


def parse_jira_time(value: Any) -> datetime | None:
    """Jira's `2025-11-28T09:00:00.000+0000` (or any ISO 8601 time with an offset) → an aware
    datetime; anything else, including a time without an offset, → None."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _object(parent: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    value = parent.get(name)
    return value if isinstance(value, Mapping) else None


def _text(value: Any) -> str | None:
    """Jira ids arrive as strings, sometimes as numbers; anything else is absent."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    return None


def _identifier(value: Any) -> str | None:
    """`_text`, and printable: the ack path refuses any other identifier (W2), so only a
    record kept before that rule holds one; it is absent rather than a lookup that fails
    on PostgreSQL at every attempt (docs/security.md, "Malformed identifiers")."""
    text = _text(value)
    return text if text is not None and text.isprintable() else None


def _change_item(raw: Any) -> ChangeItem | None:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("field"), str):
        return None
    return ChangeItem(
        field=raw["field"],
        from_id=_text(raw.get("from")),
        from_string=_text(raw.get("fromString")),
        to_id=_text(raw.get("to")),
        to_string=_text(raw.get("toString")),
    )


def _assignee(raw: Any) -> Assignee | None:
    if not isinstance(raw, Mapping):
        return None
    # W5, §8.1: Cloud names a user by `accountId`; Data Center by `key` (never `name`, which
    # a rename changes). A Cloud payload's `accountId` wins over any legacy `key`.
    account_id = _identifier(raw.get("accountId"))
    if account_id is None:
        account_id = _identifier(raw.get("key")) or None
    email = raw.get("emailAddress")
    email = email.strip() if isinstance(email, str) and _identifier(email.strip()) else None
    # An assignee we cannot identify is still an assignee: unresolvable, never an unassign.
    return Assignee(account_id=account_id, email=email)


# -- the ack path's reader (W2–W4): strict, and the only parse of the body ------------------


@attrs.frozen
class IncomingDelivery:
    """A relevant issue update as the ack path accepts it: its W3 id and its record, the form
    that is stored and that the worker reads back (`Delivery.parse`)."""

    id: str
    issue_id: str
    issue_key: str
    record: dict[str, Any]


def read_issue_update(body: Any, webhook_id: str | None) -> IncomingDelivery | None:
    """W2 (400) → W4 (None: not relevant, 200 ignored) → W3 header (400) → bounded record (400).

    W2: the body must be an object with webhookEvent, issue.key, issue.id and issue.fields.
    W4: relevant when the event is `jira:issue_updated` and a changelog item's `field` is
    status, assignee or Key. The record keeps exactly those items, so a record is relevant
    iff it has changelog items.
    """
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
    # Jira's issue ids are digits and its keys letters, digits, `_` and `-`: a control
    # character (NUL above all, which PostgreSQL text cannot hold) is a malformed body, on
    # every engine alike (docs/security.md, "Malformed identifiers").
    if not key.isprintable():
        raise BadRequest("issue.key must be printable text")
    if not issue_id.isprintable():
        raise BadRequest("issue.id must be printable text")
    if not isinstance(fields, dict):
        raise BadRequest("issue.fields must be an object")
    changelog = body.get("changelog")
    relevant: list[dict[str, Any]] = []
    if isinstance(changelog, dict):
        items = changelog.get("items")
        if isinstance(items, list):
            # A `field` that is a list or an object is no relevant field (and cannot be hashed).
            relevant = [item for item in items if isinstance(item, dict)
                        and isinstance(field := item.get("field"), str)
                        and field in RELEVANT_FIELDS]
    if event != ISSUE_UPDATED or not relevant:
        return None
    header_id = _header_delivery_id(webhook_id)
    record = _record(body, issue, fields, changelog, relevant)
    if header_id is None:  # a hash of (issue id, changelog id, timestamp)
        changelog_id, timestamp = record["changelog"]["id"], record.get("timestamp")
        basis = "\x1f".join([issue_id, "" if changelog_id is None else str(changelog_id),
                             "" if timestamp is None else str(timestamp)])
        header_id = "sha256:" + hashlib.sha256(basis.encode()).hexdigest()[:32]
    return IncomingDelivery(header_id, issue_id, key, record)


def _header_delivery_id(header: str | None) -> str | None:
    """W3: the X-Atlassian-Webhook-Identifier header when present and not blank."""
    if header is not None:
        header = header.strip()
        if header:
            if len(header) > MAX_DELIVERY_ID or not header.isprintable():
                raise BadRequest("X-Atlassian-Webhook-Identifier is malformed")
            return header
    return None


# The kept keys of a relevant changelog item, with their names in errors, their bounds and
# whether they are identifiers: `from`/`to` hold status ids or account ids (looked up by the
# worker), `fromString`/`toString` names — or, in a `Key` item, the issue keys W7 moves links
# between. An identifier must be printable text: the worker looks it up or stores it as a
# key, and PostgreSQL text holds no NUL (docs/security.md, "Malformed identifiers"). Names
# are free text, kept as sent (the journal replaces what it cannot hold).
_Bound = tuple[str, str, int, bool]
_ITEM_BOUNDS: tuple[_Bound, ...] = (
    ("field", "changelog.items[].field", MAX_NAME, False),
    ("from", "changelog.items[].from", MAX_ACCOUNT_ID, True),
    ("fromString", "changelog.items[].fromString", MAX_NAME, False),
    ("to", "changelog.items[].to", MAX_ACCOUNT_ID, True),
    ("toString", "changelog.items[].toString", MAX_NAME, False))
_KEY_ITEM_BOUNDS: tuple[_Bound, ...] = tuple(
    (key, name, limit, identifier or key in ("fromString", "toString"))
    for key, name, limit, identifier in _ITEM_BOUNDS)
# `key` is a Data Center user's identity (§8.1); kept only when the payload has one, so a
# Cloud record stays byte for byte what it was. The e-mail is looked up in Sentry.
_ASSIGNEE_BOUNDS: tuple[_Bound, ...] = (
    ("accountId", "issue.fields.assignee.accountId", MAX_ACCOUNT_ID, True),
    ("key", "issue.fields.assignee.key", MAX_ACCOUNT_ID, True),
    ("emailAddress", "issue.fields.assignee.emailAddress", MAX_NAME, True),
    ("displayName", "issue.fields.assignee.displayName", MAX_NAME, False))
_PROJECT_BOUNDS: tuple[_Bound, ...] = (
    ("id", "issue.fields.project.id", MAX_ID, True),
    ("key", "issue.fields.project.key", MAX_KEY, True))
_SCALARS = (str, int, float, bool, type(None))


def _bounded(name: str, value: Any, limit: int, identifier: bool = False) -> None:
    """The slow path of every bound check: a kept value must be a scalar of at most `limit`
    characters (as text), and printable text when it is an identifier; else 400. Strings
    within their bound (and printable identifiers) never get here."""
    if not isinstance(value, _SCALARS):
        raise BadRequest(f"{name} must be a string")
    if isinstance(value, str | int) and not isinstance(value, bool) and (
        len(value) if isinstance(value, str) else len(str(value))
    ) > limit:
        raise BadRequest(f"{name} must be at most {limit} characters")
    if identifier and isinstance(value, str) and not value.isprintable():
        raise BadRequest(f"{name} must be printable text")


def _kept(source: dict[str, Any], bounds: tuple[_Bound, ...]) -> dict[str, Any]:
    kept = {}
    for key, name, limit, identifier in bounds:
        if key in source:
            value = kept[key] = source[key]
            if value is not None and (type(value) is not str or len(value) > limit
                                      or (identifier and not value.isprintable())):
                _bounded(name, value, limit, identifier)
    return kept


def _record(body: dict[str, Any], issue: dict[str, Any], fields: dict[str, Any],
            changelog: Any, relevant: list[dict[str, Any]]) -> dict[str, Any]:
    """The part of a valid, relevant body the worker needs (W5–W7), in the body's own shape.

    Real deliveries carry every field of the issue (descriptions, comments, custom fields:
    often tens of kilobytes); the sync needs a few. Recording only those keeps the insert
    on the hot path small and keeps customer text out of the database. Every kept value is a
    scalar within its bound (`MAX_*`), else BadRequest: nothing unbounded is recorded. The
    checks run in the record's order, so the first offending field is the one named.
    """
    kept_fields: dict[str, Any] = {}
    project = fields.get("project")
    if isinstance(project, dict):
        kept_fields["project"] = _kept(project, _PROJECT_BOUNDS)
    if "updated" in fields:
        updated = kept_fields["updated"] = fields["updated"]
        if type(updated) is not str or len(updated) > MAX_TIMESTAMP:
            _bounded("issue.fields.updated", updated, MAX_TIMESTAMP)
    if "assignee" in fields:
        assignee = fields["assignee"]
        if isinstance(assignee, dict):
            kept_fields["assignee"] = _kept(assignee, _ASSIGNEE_BOUNDS)
        else:
            if assignee is not None:
                _bounded("issue.fields.assignee", assignee, MAX_NAME)
            kept_fields["assignee"] = assignee
    issue_id, key = issue["id"], issue["key"]  # strings (W2)
    if len(issue_id) > MAX_ID:
        _bounded("issue.id", issue_id, MAX_ID)
    if len(key) > MAX_KEY:
        _bounded("issue.key", key, MAX_KEY)
    record: dict[str, Any] = {
        "webhookEvent": body["webhookEvent"],
        "issue": {"id": issue_id, "key": key, "fields": kept_fields},
    }
    if "timestamp" in body:
        timestamp = record["timestamp"] = body["timestamp"]
        if type(timestamp) is not int or not -_INT_FLOOR < timestamp < _INT_CEILING:
            _bounded("timestamp", timestamp, MAX_TIMESTAMP)
    changelog_id = changelog.get("id")  # a relevant body has a changelog object
    if changelog_id is not None and (type(changelog_id) is not str or len(changelog_id) > MAX_ID
                                     or not changelog_id.isprintable()):
        _bounded("changelog.id", changelog_id, MAX_ID, identifier=True)
    record["changelog"] = {"id": changelog_id, "items": [
        _kept(item, _KEY_ITEM_BOUNDS if item["field"] == KEY_FIELD else _ITEM_BOUNDS)
        for item in relevant]}
    return record


# An int of at most MAX_TIMESTAMP characters as text (a sign counts), checked without str().
_INT_CEILING = 10**MAX_TIMESTAMP
_INT_FLOOR = 10**(MAX_TIMESTAMP - 1)
