"""Forge Remote values (SPEC §8.2): a verified invocation, the app system token, the
single-use record of a Forge Invocation Token. Values only; the checks live in
`core/forge`."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    from core.model.tenant import Tenant

# §8.2: a site's identity, `app.installationId`.
INSTALLATION_ID: Final = re.compile(
    r"ari:cloud:ecosystem::installation/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)
# §8.2: Jira may refuse a fresh install's token while permissions propagate.
PROPAGATION_SECONDS: Final = 600
# §8.2: a system token claiming a longer life than this (plus the leeway) is ignored.
SYSTEM_TOKEN_MAX_SECONDS: Final = 4 * 3600


@attrs.frozen
class SystemToken:
    """The `x-forge-oauth-system` token of a site and the instant it expires (its `exp`)."""

    token: str = attrs.field(repr=False)
    expires_at: datetime

    def usable_at(self, now: datetime) -> bool:
        return now < self.expires_at


@attrs.frozen
class VerifiedForgeCall:
    """What a verified Forge Invocation Token says (§8.2): every field was checked."""

    installation_id: str
    api_base_url: str
    module_key: str
    environment: str
    jti: str
    expires_at: datetime  # `exp`: the jti is remembered until then (plus the leeway)


@attrs.frozen
class ForgeCall:
    """What one verified call asks the store to do, atomically (§8.2): spend the token's
    `jti`, create / reactivate / switch the site, keep a newer system token, and for
    `preUninstall` mark the site uninstalled and erase the token."""

    call: VerifiedForgeCall
    remember_jti_until: datetime  # exp + leeway + a margin: refused as expired from then on
    system_token: SystemToken | None = attrs.field(default=None, repr=False)
    uninstall: bool = False


@attrs.frozen
class ForgeCallResult:
    """How a store met a `ForgeCall`: `replayed` (its `jti` was spent: nothing changed), or
    the site after it (None: a `preUninstall` for an installation never seen)."""

    replayed: bool
    tenant: Tenant | None = None
