"""Schema migrations, one `Migrations` set per area so areas evolve independently."""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

from adapters.sqlite import inbox, lifecycle, sync_store

foundation = Migrations("sentry_jira.foundation")


@foundation()
def create_meta_and_tenants(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute(
        """
        CREATE TABLE tenants (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            client_key TEXT NOT NULL UNIQUE,
            shared_secret TEXT,            -- Fernet-encrypted; NULL once uninstalled
            secret_version INTEGER NOT NULL DEFAULT 1,
            base_url TEXT NOT NULL,
            display_url TEXT,
            status TEXT NOT NULL CHECK (status IN ('installed', 'uninstalled')),
            installed_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )


from adapters.sqlite.admin import admin as _admin_migrations  # noqa: E402

# One set per area, appended; order matters only within a set.
ALL_MIGRATIONS: tuple[Migrations, ...] = (
    foundation,
    inbox.migrations,
    _admin_migrations,
    lifecycle.migrations,
    sync_store.migrations,
)
