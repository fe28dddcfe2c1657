"""The per-tenant cache of Jira's status list (W5 "cached per tenant").

Keyed by tenant id and remembered with the tenant's `secret_version`: a re-install
(L4) or an uninstall (L5) bumps the version, so the next lookup misses and fetches
again. Entries expire after a TTL, and the cache holds a bounded number of tenants
(least recently used evicted first).
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta

from core.model.jira import JiraStatus
from core.model.tenant import Tenant
from ports.clock import Clock

DEFAULT_TTL = timedelta(minutes=10)
DEFAULT_MAX_TENANTS = 1024


class StatusCache:
    def __init__(
        self,
        clock: Clock,
        *,
        ttl: timedelta = DEFAULT_TTL,
        max_tenants: int = DEFAULT_MAX_TENANTS,
    ) -> None:
        self._clock = clock
        self._ttl = ttl
        self._max = max_tenants
        # tenant id -> (secret version, expires at, statuses)
        self._entries: OrderedDict[int, tuple[int, datetime, tuple[JiraStatus, ...]]] = (
            OrderedDict()
        )

    def get(self, tenant: Tenant) -> list[JiraStatus] | None:
        entry = self._entries.get(tenant.id)
        if entry is None:
            return None
        version, expires_at, statuses = entry
        if version != tenant.secret_version or self._clock.now() >= expires_at:
            del self._entries[tenant.id]
            return None
        self._entries.move_to_end(tenant.id)
        return list(statuses)

    def put(self, tenant: Tenant, statuses: list[JiraStatus]) -> None:
        expires_at = self._clock.now() + self._ttl
        self._entries[tenant.id] = (tenant.secret_version, expires_at, tuple(statuses))
        self._entries.move_to_end(tenant.id)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
