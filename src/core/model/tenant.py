"""The tenant: one Jira Cloud site that installed the app (SPEC §1, L3–L5)."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs


class TenantStatus(enum.StrEnum):
    INSTALLED = "installed"
    UNINSTALLED = "uninstalled"


@attrs.frozen
class Installation:
    """What a verified `installed` callback asks to store (L3/L4)."""

    client_key: str
    shared_secret: str = attrs.field(repr=False)
    base_url: str
    display_url: str | None
    installed_at: datetime


@attrs.frozen
class Tenant:
    """A stored Jira site. `shared_secret` is None once uninstalled (L5)."""

    id: int
    client_key: str
    base_url: str
    display_url: str | None
    status: TenantStatus
    installed_at: datetime
    shared_secret: str | None = attrs.field(repr=False)
    # Bumped on every rotation so caches of the secret can be keyed by it (L4).
    secret_version: int = 1

    @property
    def is_installed(self) -> bool:
        return self.status is TenantStatus.INSTALLED and self.shared_secret is not None
