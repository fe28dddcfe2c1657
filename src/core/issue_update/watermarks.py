"""W6 ordering: pure watermark checks the shell calls at decide time and before every write."""

from __future__ import annotations

from datetime import datetime

from core.model.sync import Kind, Watermark


def stale_reason(
    kind: Kind, updated: datetime | None, delivery_id: str, watermark: Watermark | None
) -> str | None:
    """Why a change of this delivery is stale under `watermark`, or None when it may be written.

    Older than the watermark → stale. Equal to a watermark another delivery set → stale for
    status, not for assignee. A delivery never makes its own changes stale (it writes all its
    linked Sentry issues). No timestamp → never stale.
    """
    if watermark is None or updated is None:
        return None
    if updated < watermark.updated:
        return (
            f"issue updated at {_iso(updated)}, older than the {kind.value} already synced "
            f"from delivery {watermark.delivery_id} (updated {_iso(watermark.updated)})"
        )
    if (
        updated == watermark.updated
        and kind is Kind.STATUS
        and watermark.delivery_id != delivery_id
    ):
        return (
            f"issue updated at {_iso(updated)}, the same time as the status already synced "
            f"from delivery {watermark.delivery_id}"
        )
    return None


def advanced(
    watermark: Watermark | None, updated: datetime | None, delivery_id: str
) -> Watermark | None:
    """The watermark after an applied or no-op decision, or None when it stays as it is
    (no timestamp, or one older than the watermark: never moved backwards)."""
    if updated is None:
        return None
    if watermark is not None and updated < watermark.updated:
        return None
    candidate = Watermark(updated=updated, delivery_id=delivery_id)
    return None if candidate == watermark else candidate


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")
