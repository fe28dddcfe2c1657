"""Values of the sync: outcomes, journal decisions, actions and watermarks (W5–W9)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs


class Outcome(enum.StrEnum):
    """W9: what happened to one decision; each becomes one journal entry."""

    APPLIED = "applied"
    NOOP = "noop"
    STALE = "stale"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    UNRESOLVABLE = "unresolvable"
    RETRYING = "retrying"
    DEAD = "dead"


class Kind(enum.StrEnum):
    """The journal's `kind`; STATUS and ASSIGNEE are also watermark kinds (W6)."""

    STATUS = "status"
    ASSIGNEE = "assignee"
    KEY = "key"
    DELIVERY = "delivery"


@attrs.frozen
class Decision:
    """A journal entry in the making: the shell adds the time, delivery id and issue key."""

    kind: Kind
    outcome: Outcome
    reason: str
    org: str | None = None
    sentry_issue_id: str | None = None

    @property
    def detail(self) -> str:
        """The journal's `detail`: the reason, prefixed by the Sentry issue it is about."""
        if self.sentry_issue_id is None:
            return self.reason
        return f"Sentry issue {self.sentry_issue_id}: {self.reason}"


@attrs.frozen
class WatermarkKey:
    """W6: watermarks are kept per (tenant, Jira issue id, org, kind)."""

    tenant_id: int
    issue_id: str
    org: str
    kind: Kind


@attrs.frozen
class Watermark:
    """The `updated` time of the delivery that last advanced a watermark, and its id."""

    updated: datetime
    delivery_id: str


@attrs.frozen
class WatermarkAdvance:
    """Store `watermark` under `key` (it is never older than what was there)."""

    key: WatermarkKey
    watermark: Watermark


@attrs.frozen
class Rekey:
    """W7: move the links of `old_key` to `new_key`, in every org of the tenant."""

    tenant_id: int
    old_key: str
    new_key: str


RELEASE_FALLBACK_REASON = (
    "Sentry refused the release-based resolve (the org has no release); resolved without one"
)


@attrs.frozen
class SentryWrite:
    """One PUT of W8 to one Sentry issue, with what the shell needs on every attempt.

    - `updated`/`delivery_id`: re-checked against the watermark right before each attempt (W6).
    - `fallback`: the body to send instead when Sentry answers a release-based resolve with
      400 (`SentryReleaseRefused`); see `with_fallback` (W5).
    - `skip_if_ignored`: the binding's `skip_archived`; the shell reads the issue's status
      first and `check_write` turns an `ignored` issue into a no-op (W5).
    """

    tenant_id: int
    delivery_id: str
    issue_id: str
    issue_key: str
    org: str
    sentry_issue_id: str
    kind: Kind
    payload: dict[str, Any] = attrs.field(hash=False)
    reason: str
    updated: datetime | None = None
    fallback: dict[str, Any] | None = attrs.field(default=None, hash=False)
    skip_if_ignored: bool = False

    @property
    def watermark_key(self) -> WatermarkKey:
        return WatermarkKey(self.tenant_id, self.issue_id, self.org, self.kind)

    def with_fallback(self) -> SentryWrite | None:
        """The same write with the fallback body (a plain resolve), or None when there is none."""
        if self.fallback is None:
            return None
        return attrs.evolve(
            self,
            payload=self.fallback,
            fallback=None,
            reason=f"{self.reason}; {RELEASE_FALLBACK_REASON}",
        )

    def to_record(self) -> dict[str, Any]:
        """A JSON-safe form, for a queue row or a dead letter's `action`."""
        return {
            "tenant_id": self.tenant_id,
            "delivery_id": self.delivery_id,
            "issue_id": self.issue_id,
            "issue_key": self.issue_key,
            "org": self.org,
            "sentry_issue_id": self.sentry_issue_id,
            "kind": self.kind.value,
            "payload": self.payload,
            "reason": self.reason,
            "updated": None if self.updated is None else self.updated.isoformat(),
            "fallback": self.fallback,
            "skip_if_ignored": self.skip_if_ignored,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> SentryWrite:
        updated = record.get("updated")
        return cls(
            tenant_id=int(record["tenant_id"]),
            delivery_id=str(record["delivery_id"]),
            issue_id=str(record["issue_id"]),
            issue_key=str(record["issue_key"]),
            org=str(record["org"]),
            sentry_issue_id=str(record["sentry_issue_id"]),
            kind=Kind(record["kind"]),
            payload=dict(record["payload"]),
            reason=str(record["reason"]),
            updated=None if updated is None else datetime.fromisoformat(updated),
            fallback=None if record.get("fallback") is None else dict(record["fallback"]),
            skip_if_ignored=bool(record.get("skip_if_ignored", False)),
        )
