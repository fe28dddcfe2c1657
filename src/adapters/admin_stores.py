"""The administration stores as one group (`Container.admin`), real or in-memory."""

from __future__ import annotations

import attrs

from adapters.memory.admin import (
    MemoryAccountMappingStore,
    MemoryAdminData,
    MemoryBindingStore,
    MemoryLinkStore,
    MemorySearchTokenStore,
)
from adapters.sqlite.admin import (
    SqliteAccountMappingStore,
    SqliteBindingStore,
    SqliteLinkStore,
    SqliteSearchTokenStore,
)
from adapters.sqlite.database import Database
from ports.admin import AccountMappingStore, BindingStore, LinkStore, SearchTokenStore


@attrs.frozen
class AdminStores:
    bindings: BindingStore
    links: LinkStore
    accounts: AccountMappingStore
    search_tokens: SearchTokenStore


def memory_admin_stores() -> AdminStores:
    """Fakes sharing one data set, so that unbinding cascades as it does in SQLite."""
    data = MemoryAdminData()
    return AdminStores(
        bindings=MemoryBindingStore(data),
        links=MemoryLinkStore(data),
        accounts=MemoryAccountMappingStore(data),
        search_tokens=MemorySearchTokenStore(data),
    )


def sqlite_admin_stores(database: Database) -> AdminStores:
    return AdminStores(
        bindings=SqliteBindingStore(database),
        links=SqliteLinkStore(database),
        accounts=SqliteAccountMappingStore(database),
        search_tokens=SqliteSearchTokenStore(database),
    )
