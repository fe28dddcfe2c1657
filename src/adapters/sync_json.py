"""JSON shapes of the journal and the dead letters (§A), shared by the HTTP API and the CLI.

No shared secret or Sentry token is in any of them: an action records the org, the Sentry
issue id and the W8 body, never the binding's token.
"""

from __future__ import annotations

from typing import Any

from adapters.admin_json import iso_utc
from ports.sync_store import DeadLetter, JournalEntry


def journal_json(entry: JournalEntry) -> dict[str, Any]:
    return {
        "at": iso_utc(entry.at),
        "delivery": entry.delivery_id,
        "issue_key": entry.issue_key,
        "org": entry.org,
        "kind": entry.kind.value,
        "outcome": entry.outcome.value,
        "detail": entry.detail,
    }


def dead_letter_json(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id,
        "tenant_id": letter.tenant_id,
        "org": letter.org,
        "issue_key": letter.issue_key,
        "kind": letter.kind.value,
        "action": dict(letter.action),
        "attempts": letter.attempts,
        "last_error": letter.last_error,
        "created_at": iso_utc(letter.created_at),
    }
