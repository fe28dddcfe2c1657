"""The composition root: the only place that builds adapters (STYLE "One composition root")."""

from __future__ import annotations

from typing import Any

import attrs

from adapters.admin_stores import AdminStores, memory_admin_stores, sqlite_admin_stores
from adapters.clock import SystemClock
from adapters.config import ConfigError, Settings
from adapters.crypto import SecretBox, read_or_create_key_file
from adapters.memory.inbox import MemoryInbox
from adapters.sqlite.database import Database, KeyMismatchError, holds_encrypted_data
from adapters.sqlite.inbox import SqliteInbox
from adapters.sqlite.loop_connection import LoopConnection
from adapters.sqlite.schema import ALL_MIGRATIONS
from adapters.sqlite.tenants import SqliteTenantStore
from ports.clock import Clock
from ports.inbox import Inbox
from ports.tenants import TenantStore


@attrs.define
class Container:
    """Every port the use cases need, built once; tests build it with fakes."""

    settings: Settings
    tenants: TenantStore
    clock: Clock
    database: Database | None = None
    inbox: Inbox = attrs.field(factory=MemoryInbox)
    loop_connection: LoopConnection | None = None
    # §A stores; bootstrap puts the SQLite ones here, tests get in-memory fakes.
    admin: AdminStores = attrs.field(factory=memory_admin_stores)

    async def startup(self) -> None:
        """Lifespan start: long-lived clients and workers start here."""

    async def shutdown(self) -> None:
        """Lifespan end: close what startup opened."""
        if self.loop_connection is not None:
            self.loop_connection.close()

    async def health(self) -> dict[str, Any]:
        """Figures for /health; raises Unavailable when storage does not answer."""
        if self.database is not None:
            await self.database.ping()
        stats = await self.inbox.stats(self.clock.now())
        return {
            "queue_depth": stats.pending,
            "oldest_pending_seconds": stats.oldest_pending_seconds,
        }

    def close(self) -> None:
        if self.database is not None:
            self.database.close()


def open_database(settings: Settings) -> Database:
    """Open (and migrate) the database with the configured or generated secret key."""
    keys = settings.secret_keys
    if not keys:
        has_data = holds_encrypted_data(settings.database)
        key = read_or_create_key_file(settings.key_file, may_create=not has_data)
        if key is None:
            raise ConfigError(
                "SENTRY_JIRA_SECRET_KEY",
                f"unset and no key file at {settings.key_file}, but the database holds "
                "encrypted data: restore the key, never generate a new one over old data",
            )
        keys = (key,)
    settings.database.parent.mkdir(parents=True, exist_ok=True)
    database = Database(settings.database, SecretBox(keys))
    try:
        database.migrate(ALL_MIGRATIONS)
        database.check_key()
    except KeyMismatchError:
        database.close()
        raise ConfigError(
            "SENTRY_JIRA_SECRET_KEY", "cannot decrypt the data in the database with this key"
        ) from None
    except BaseException:
        database.close()
        raise
    return database


def bootstrap(settings: Settings) -> Container:
    """Build the production container from settings."""
    database = open_database(settings)
    loop_connection = LoopConnection(database.path)
    return Container(
        settings=settings,
        tenants=SqliteTenantStore(database),
        clock=SystemClock(),
        database=database,
        inbox=SqliteInbox(database, loop_connection),
        loop_connection=loop_connection,
        admin=sqlite_admin_stores(database),
    )
