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
    # §8.0: the one transport that reaches this site (`connect`, later `forge`, `webhook`).
    transport: str = "connect"

    @property
    def is_installed(self) -> bool:
        return self.status is TenantStatus.INSTALLED and self.shared_secret is not None


@attrs.frozen
class VerifiedSite:
    """A site whose request its transport's verifier accepted (§8.0); only verifiers build one.

    The issue-update use case takes this instead of a transport's request, so it never learns
    how the delivery was authenticated (Connect JWT, webhook signature, Forge token).
    """

    tenant: Tenant
