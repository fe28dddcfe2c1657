"""A recorded `jira:issue_updated` delivery, parsed into what the sync needs (W4–W7)."""

from __future__ import annotations

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
    """The issue's current assignee; `email` is None when Jira hides it."""

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

    @property
    def is_relevant(self) -> bool:
        """W4: the changelog touches status, assignee or the issue key."""
        return any(item.field in RELEVANT_FIELDS for item in self.items)

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
    account_id = _text(raw.get("accountId"))
    email = raw.get("emailAddress")
    email = email.strip() if isinstance(email, str) and email.strip() else None
    # An assignee we cannot identify is still an assignee: unresolvable, never an unassign.
    return Assignee(account_id=account_id, email=email)
