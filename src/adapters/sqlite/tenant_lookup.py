"""The webhook's tenant lookup (W1) on the event-loop connection, without a thread hop.

Every call reads the tenant's row, so a rotation (L4) or an uninstall (L5) committed by any
process is seen by the very next request. Only the Fernet decryption is cached, keyed by the
ciphertext itself: a rotated secret has a new ciphertext, so a stale plaintext can never be
returned ("no unversioned secret cache").
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from adapters.crypto import SecretBox
from adapters.sqlite.loop_connection import LoopConnection
from core.tenant import Tenant, TenantStatus

_SELECT = (
    "SELECT id, client_key, shared_secret, secret_version, base_url, display_url, status, "
    "installed_at FROM tenants WHERE client_key = ?"
)


class LoopTenantLookup:
    def __init__(self, loop_connection: LoopConnection, box: SecretBox,
                 *, cache_size: int = 4096) -> None:
        self._loop = loop_connection
        self._box = box
        self._cache_size = cache_size
        self._plaintexts: OrderedDict[str, str] = OrderedDict()

    def _secret(self, ciphertext: str | None) -> str | None:
        if ciphertext is None:
            return None
        plain = self._plaintexts.get(ciphertext)
        if plain is None:
            plain = self._box.decrypt(ciphertext)
            self._plaintexts[ciphertext] = plain
            if len(self._plaintexts) > self._cache_size:
                self._plaintexts.popitem(last=False)
        return plain

    async def by_client_key(self, client_key: str) -> Tenant | None:
        rows = await self._loop.read(_SELECT, (client_key,))
        if not rows:
            return None
        (tenant_id, key, ciphertext, version, base_url, display_url, status,
         installed_at) = rows[0]
        return Tenant(
            id=tenant_id, client_key=key, base_url=base_url, display_url=display_url,
            status=TenantStatus(status), installed_at=datetime.fromisoformat(installed_at),
            shared_secret=self._secret(ciphertext), secret_version=version,
        )
