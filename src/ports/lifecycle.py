"""The lifecycle store port: tenant writes and single use of their tokens, atomically (L3–L6)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from core.model.tenant import Installation
from core.model.used_tokens import LifecycleResult, UsedToken


class LifecycleStore(Protocol):
    """Each method is one atomic step: the single-use check, the tenant write and the
    remembered token commit together or not at all (two processes included)."""

    async def record_install(
        self, installation: Installation, token: UsedToken, *, now: datetime
    ) -> LifecycleResult:
        """L3/L4 unless `token` was used before: then SAME_BODY or OTHER_BODY, no change.

        Tokens whose `forget_after` is long past `now` are pruned in the same step.
        """
        ...

    async def record_uninstall(
        self, client_key: str, token: UsedToken, *, now: datetime
    ) -> LifecycleResult:
        """L5 unless `token` was used before. An unknown clientKey stores nothing (not
        even the token) and answers FIRST_USE with `tenant` None."""
        ...
