"""In-memory Forge sites (SPEC §8.2) over the in-memory tenant store: the same decision
(`core.forge.sites.forge_site_after`) as SQLite, and spent FIT ids by hash."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import attrs

from adapters.memory.tenants import MemoryTenantStore
from core.forge.sites import NEW_SITE_ID, forge_site_after
from core.model.errors import Unauthorized, Unavailable
from core.model.forge import ForgeCall, ForgeCallResult
from core.model.tenant import FORGE


class MemoryForgeSites:
    def __init__(self, tenants: MemoryTenantStore) -> None:
        self._tenants = tenants
        self._spent: dict[str, datetime] = {}  # sha256 of a jti → when it may be forgotten

    async def record_call(self, call: ForgeCall, *, now: datetime) -> ForgeCallResult:
        self._spent = {h: until for h, until in self._spent.items() if until >= now}
        spent = hashlib.sha256(call.call.jti.encode("utf-8", "surrogatepass")).hexdigest()
        if spent in self._spent:
            return ForgeCallResult(replayed=True)
        self._spent[spent] = call.remember_jti_until
        existing = next((t for t in await self._tenants.list_all()
                         if t.installation_id == call.call.installation_id), None)
        after = forge_site_after(existing, call, now=now)
        if after is None or after is existing:
            return ForgeCallResult(replayed=False, tenant=after)
        if after.id == NEW_SITE_ID:
            after = attrs.evolve(after, id=self._tenants.allocate_id())
        return ForgeCallResult(replayed=False, tenant=self._tenants.save(after))

    async def drop_system_token(self, tenant_id: int, token: str) -> None:
        site = await self._tenants.get(tenant_id)
        if site is None or site.transport != FORGE or site.system_token is None \
                or site.system_token.token != token:
            return
        self._tenants.save(attrs.evolve(site, system_token=None))


class MemoryForgeKeys:
    """`ports.forge.ForgeKeys` from a dict of kid → RSA public key; `unavailable` makes
    every lookup answer as an outage would (503)."""

    def __init__(self, keys: dict[str, Any] | None = None) -> None:
        self.keys: dict[str, Any] = dict(keys or {})
        self.unavailable = False
        self.lookups = 0

    async def signing_key(self, kid: str) -> Any:
        self.lookups += 1
        if self.unavailable:
            raise Unavailable("the Forge key set cannot be fetched now", retry_after=5)
        key = self.keys.get(kid)
        if key is None:
            raise Unauthorized("the token's signing key is unknown")
        return key
