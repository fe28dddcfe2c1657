"""The webhook's tenant lookup (W1) on the event-loop connection, without a thread hop.

A rotation (L4) or an uninstall (L5) committed by any process is seen by the very next
request: a row is reused only while SQLite's `data_version` of this connection has not
moved (it moves with every commit of any other connection), and decrypted secrets are keyed
by their ciphertext, so a rotated secret can never come back stale ("no unversioned secret
cache").
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from adapters.crypto import SecretBox
from adapters.sqlite.loop_connection import LoopConnection
from adapters.sqlite.tenants import COLUMNS, tenant_of_row
from core.model.tenant import Tenant

_BY_CLIENT_KEY = f"SELECT {COLUMNS} FROM tenants WHERE client_key = ?"
_BY_ID = f"SELECT {COLUMNS} FROM tenants WHERE id = ?"


class LoopTenantLookup:
    def __init__(self, loop_connection: LoopConnection, box: SecretBox,
                 *, cache_size: int = 4096) -> None:
        self._loop = loop_connection
        self._box = box
        self._cache_size = cache_size
        self._plaintexts: OrderedDict[str, str] = OrderedDict()
        # One cache per key kind (a clientKey is a string, a site id an integer); each entry
        # carries the `data_version` it was read under.
        self._rows: OrderedDict[str, tuple[int, Tenant | None]] = OrderedDict()
        self._rows_by_id: OrderedDict[int, tuple[int, Tenant | None]] = OrderedDict()

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
        # The ack path's every request: the hit is checked here, without another call.
        hit = self._rows.get(client_key)
        if hit is not None and hit[0] == self._loop.data_version():
            return hit[1]
        return await self._cached(self._rows, client_key, _BY_CLIENT_KEY)

    async def by_id(self, tenant_id: int) -> Tenant | None:
        """§8.1: the webhook route's site, with the same discipline as `by_client_key`."""
        return await self._cached(self._rows_by_id, tenant_id, _BY_ID)

    async def _cached(self, rows: OrderedDict[Any, tuple[int, Tenant | None]], key: Any,
                      sql: str) -> Tenant | None:
        # `data_version` moves whenever any other connection (another process, this
        # process's storage thread) commits: while it stands still, no tenant row can have
        # changed, so the row read last time is still the row in the database.
        # An absent row is remembered the same way: an unknown id costs what a known one
        # costs, so the time of a 401 tells nobody which site ids exist (§8.1).
        version = self._loop.data_version()
        hit = rows.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        found = await self._loop.read(sql, (key,))
        tenant = tenant_of_row(found[0], self._secret) if found else None
        rows[key] = (version, tenant)
        if len(rows) > self._cache_size:
            rows.popitem(last=False)
        return tenant
