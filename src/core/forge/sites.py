"""§8.2 site identity: what one verified Forge call makes of the site it names. Pure: every
store (memory, SQLite, later PostgreSQL) applies this one decision inside its transaction."""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from core.model.forge import ForgeCall, VerifiedForgeCall
from core.model.tenant import (
    FORGE,
    WEBHOOK,
    Tenant,
    TenantStatus,
    forge_client_key,
)

NEW_SITE_ID = 0  # a site not stored yet; the store gives it its id
# Spent FIT ids are kept this long past their `exp` (clock differences between processes).
JTI_MARGIN = timedelta(minutes=5)


def jti_forget_after(call: VerifiedForgeCall, *, leeway_seconds: int) -> datetime:
    """When a spent `jti` may be forgotten: the token is refused as expired from then on."""
    return call.expires_at + timedelta(seconds=leeway_seconds) + JTI_MARGIN


def forge_site_after(existing: Tenant | None, forge_call: ForgeCall, *,
                     now: datetime) -> Tenant | None:
    """The site after a verified call (`existing`: the site carrying its installation id):
    - unknown → a new installed `forge` site (its `base_url` is `apiBaseUrl`), except for a
      `preUninstall`, which stores nothing (None);
    - a Connect site carrying the id (Connect on Forge) → the same site, now `forge`: its id,
      bindings and links stay, its shared secret is erased (Connect calls are 401 from now);
    - an uninstalled site → installed again, `installed_at` now (the 10-minute rule);
    - a newer system token (later `exp` than the stored one) replaces the stored one;
    - `preUninstall` → uninstalled, the token erased.
    A webhook site never carries an installation id; it is left as it is.
    Nothing to change → `existing` itself (the stores test `is`, not a field comparison)."""
    call = forge_call.call
    if existing is not None and existing.transport == WEBHOOK:
        return existing
    if existing is None:
        if forge_call.uninstall:
            return None
        site = Tenant(id=NEW_SITE_ID, client_key=forge_client_key(call.installation_id),
                      base_url=call.api_base_url, display_url=None,
                      status=TenantStatus.INSTALLED, installed_at=now, shared_secret=None,
                      transport=FORGE, installation_id=call.installation_id)
    else:
        site = existing
        if site.transport != FORGE or site.status is not TenantStatus.INSTALLED:
            site = attrs.evolve(site, transport=FORGE, status=TenantStatus.INSTALLED,
                                installed_at=now, shared_secret=None,
                                secret_version=site.secret_version + 1)
        if site.base_url != call.api_base_url:
            site = attrs.evolve(site, base_url=call.api_base_url)
    if forge_call.uninstall:
        return attrs.evolve(site, status=TenantStatus.UNINSTALLED, system_token=None)
    offered, stored = forge_call.system_token, site.system_token
    if offered is not None and (stored is None or offered.expires_at > stored.expires_at):
        site = attrs.evolve(site, system_token=offered)
    return site
