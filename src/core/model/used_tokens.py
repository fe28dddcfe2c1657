"""Single use of lifecycle tokens (SPEC §4.3): what is remembered, and what a replay is."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

import attrs

from core.model.tenant import Tenant


@attrs.frozen
class UsedToken:
    """An accepted lifecycle token, remembered with the body it came with.

    Only hashes are kept: the token and the body (which carries the shared secret)
    are never stored.
    """

    token_hash: str  # sha256 hex of the whole token
    body_hash: str  # sha256 hex of the raw body bytes
    forget_after: datetime  # exp + leeway: the token is refused as expired from then on


class Replay(enum.Enum):
    """How a lifecycle write met the single-use rule."""

    FIRST_USE = "first_use"  # applied now
    SAME_BODY = "same_body"  # the same token and byte-identical body again: 204, no change
    OTHER_BODY = "other_body"  # the same token with another body: 401, no change


@attrs.frozen
class LifecycleResult:
    """The outcome of one lifecycle write; `tenant` is None for an unknown site (L5)."""

    replay: Replay
    tenant: Tenant | None


# Remembered tokens are pruned this long after `forget_after`: the margin covers clock
# differences between processes sharing the database.
PRUNE_MARGIN = timedelta(minutes=5)
