"""The Forge ports (SPEC §8.2): the FIT signing keys, and the store of Forge sites."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from core.model.forge import ForgeCall, ForgeCallResult


class ForgeKeys(Protocol):
    async def signing_key(self, kid: str) -> Any:
        """The RSA public key (a `cryptography` RSAPublicKey) of `kid` in the configured
        JWKS. `Unauthorized` when the set has no such key (after at most one refetch per
        60 s); `Unavailable(retry_after)` when the set cannot be fetched now."""
        ...


class ForgeSites(Protocol):
    async def record_call(self, call: ForgeCall, *, now: datetime) -> ForgeCallResult:
        """One atomic step (two processes included): spend the FIT's `jti` (`replayed`,
        nothing changed, when it was spent before); find the site by installation id, else create
        it, reactivating an uninstalled one and switching a Connect site that carries the
        id to `forge` (id, bindings and links kept); store `apiBaseUrl` as its base URL;
        keep `call.system_token` when it expires later than the stored one; for
        `uninstall`, mark the site uninstalled and erase its token. The site after it:
        `core.forge.sites.forge_site_after`."""
        ...

    async def drop_system_token(self, tenant_id: int, token: str) -> None:
        """§8.2: Jira refused `token` (401): forget it, unless a newer one replaced it."""
        ...
