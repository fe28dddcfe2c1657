"""In-memory lifecycle store over the in-memory tenant store."""

from __future__ import annotations

import asyncio
from datetime import datetime

from adapters.memory.tenants import MemoryTenantStore
from core.model.tenant import Installation
from core.model.used_tokens import PRUNE_MARGIN, LifecycleResult, Replay, UsedToken


class MemoryLifecycleStore:
    def __init__(self, tenants: MemoryTenantStore) -> None:
        self.tenants = tenants
        self.used: dict[str, UsedToken] = {}
        self._lock = asyncio.Lock()

    def _replay(self, token: UsedToken, now: datetime) -> Replay:
        cutoff = now - PRUNE_MARGIN
        for token_hash in [h for h, t in self.used.items() if t.forget_after < cutoff]:
            del self.used[token_hash]
        seen = self.used.get(token.token_hash)
        if seen is None:
            return Replay.FIRST_USE
        return Replay.SAME_BODY if seen.body_hash == token.body_hash else Replay.OTHER_BODY

    async def record_install(
        self, installation: Installation, token: UsedToken, *, now: datetime
    ) -> LifecycleResult:
        async with self._lock:
            replay = self._replay(token, now)
            if replay is not Replay.FIRST_USE:
                return LifecycleResult(
                    replay, await self.tenants.by_client_key(installation.client_key)
                )
            tenant = await self.tenants.upsert_installed(installation)
            self.used[token.token_hash] = token
            return LifecycleResult(replay, tenant)

    async def record_uninstall(
        self, client_key: str, token: UsedToken, *, now: datetime
    ) -> LifecycleResult:
        async with self._lock:
            replay = self._replay(token, now)
            if replay is not Replay.FIRST_USE:
                return LifecycleResult(replay, await self.tenants.by_client_key(client_key))
            if await self.tenants.by_client_key(client_key) is None:
                return LifecycleResult(replay, None)  # L5: unknown site, nothing stored
            tenant = await self.tenants.mark_uninstalled(client_key)
            self.used[token.token_hash] = token
            return LifecycleResult(replay, tenant)
