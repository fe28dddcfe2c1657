"""§8.2 `issue-updated`: a Forge product event read as the W2 body the pipeline knows.

Forge posts `avi:jira:updated:issue` with the event at the top level or under `payload`. The
mapping keeps what W2–W7 read (`issue.id`, `issue.key`, `issue.fields`, `changelog`), names
the event as a Jira webhook would (`jira:issue_updated`), and gives W6 a watermark: the
issue's `fields.updated`, else the event's `timestamp`. The delivery id is a hash of what
stays the same when Forge retries (installation, event type, issue, changelog, timestamp),
so a retried event is a duplicate whatever new token it carries.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Final

import attrs

from core.issue_update.delivery import ISSUE_UPDATED
from core.model.errors import BadRequest

FORGE_ISSUE_UPDATED: Final = "avi:jira:updated:issue"
# Forge timestamps are milliseconds since the epoch; anything outside these years is no time.
_EARLIEST_MS: Final = 946_684_800_000  # 2000-01-01
_LATEST_MS: Final = 4_102_444_800_000  # 2100-01-01


@attrs.frozen
class ForgeIssueEvent:
    """A Forge event as the W2 reader takes it: `body` (None: ignored before W2, e.g. a
    `selfGenerated` event) and its §8.2 delivery id."""

    body: dict[str, Any] | None
    delivery_id: str


def read_forge_event(payload: Any, *, installation_id: str) -> ForgeIssueEvent:
    """§8.2: the event (top level or under `payload`) → a W2 body and its delivery id.
    Not an object, or no string `eventType` → 400."""
    if not isinstance(payload, dict):
        raise BadRequest("the body must be a JSON object")
    inner = payload.get("payload")
    event = inner if isinstance(inner, dict) else payload
    event_type = event.get("eventType")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 128:
        raise BadRequest("eventType must be a string")
    delivery_id = forge_delivery_id(installation_id, event)
    if event.get("selfGenerated") is True:
        return ForgeIssueEvent(None, delivery_id)
    body: dict[str, Any] = {
        # Another event type keeps its name and is then "ignored" by W2.
        "webhookEvent": ISSUE_UPDATED if event_type == FORGE_ISSUE_UPDATED else event_type,
        "issue": _issue_with_watermark(event.get("issue"), event.get("timestamp")),
    }
    if "changelog" in event:
        body["changelog"] = event["changelog"]
    if "timestamp" in event:
        body["timestamp"] = event["timestamp"]
    return ForgeIssueEvent(body, delivery_id)


def _issue_with_watermark(issue: Any, timestamp: Any) -> Any:
    """W6: `fields.updated`, else the event's `timestamp` written as Jira writes times."""
    if not isinstance(issue, dict):
        return issue  # W2 answers 400
    fields = issue.get("fields")
    if not isinstance(fields, dict) or fields.get("updated") is not None:
        return issue
    written = jira_time_of_millis(timestamp)
    if written is None:
        return issue
    return {**issue, "fields": {**fields, "updated": written}}


def jira_time_of_millis(value: Any) -> str | None:
    """`1764844800123` → `2025-12-04T10:40:00.123+0000`; None for anything else."""
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    if not _EARLIEST_MS <= value < _LATEST_MS:
        return None
    moment = datetime.fromtimestamp(value / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value % 1000:03d}+0000"


def forge_delivery_id(installation_id: str, event: dict[str, Any]) -> str:
    """§8.2: hash of (installation id, event type, issue id, changelog id when present,
    timestamp). Only values that are scalars take part (others hash as empty)."""
    issue = event.get("issue")
    changelog = event.get("changelog")
    parts = [
        installation_id,
        _scalar(event.get("eventType")),
        _scalar(issue.get("id")) if isinstance(issue, dict) else "",
        _scalar(changelog.get("id")) if isinstance(changelog, dict) else "",
        _scalar(event.get("timestamp")),
    ]
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return "forge:" + digest[:32]


def _scalar(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, str | int):
        return str(value)
    return ""
