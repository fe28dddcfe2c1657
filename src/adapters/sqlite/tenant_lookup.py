"""The webhook's tenant lookup (W1) on the event-loop connection, without a thread hop.

A rotation (L4) or an uninstall (L5) committed by any process is seen by the very next
request: a row is reused only while SQLite's `data_version` of this connection has not
moved (it moves with every commit of any other connection), and decrypted secrets are keyed
by their ciphertext, so a rotated secret can never come back stale ("no unversioned secret
cache").
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from adapters.crypto import SecretBox
from adapters.sqlite.loop_connection import LoopConnection
from core.model.tenant import Tenant, TenantStatus

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
        self._rows: OrderedDict[str, tuple[int, Tenant]] = OrderedDict()

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
        # `data_version` moves whenever any other connection (another process, this
        # process's storage thread) commits: while it stands still, no tenant row can have
        # changed, so the row read last time is still the row in the database.
        version = self._loop.data_version()
        hit = self._rows.get(client_key)
        if hit is not None and hit[0] == version:
            return hit[1]
        rows = await self._loop.read(_SELECT, (client_key,))
        if not rows:
            return None
        (tenant_id, key, ciphertext, secret_version, base_url, display_url, status,
         installed_at) = rows[0]
        tenant = Tenant(
            id=tenant_id, client_key=key, base_url=base_url, display_url=display_url,
            status=TenantStatus(status), installed_at=datetime.fromisoformat(installed_at),
            shared_secret=self._secret(ciphertext), secret_version=secret_version,
        )
        self._rows[client_key] = (version, tenant)
        if len(self._rows) > self._cache_size:
            self._rows.popitem(last=False)
        return tenant
