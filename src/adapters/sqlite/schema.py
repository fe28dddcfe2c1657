"""Schema migrations, one `Migrations` set per area so areas evolve independently."""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

from adapters.sqlite import inbox, lifecycle, sync_store

foundation = Migrations("sentry_jira.foundation")

# Every column that holds a Fernet-encrypted value, the one list `secrets reencrypt` (and a
# future `db copy`) reads; tests/contract/test_secrets_reencrypt.py fails when one is missing.
# The key check (`meta` row `key_check`) is re-encrypted beside them.
ENCRYPTED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("tenants", "shared_secret"),
    ("bindings", "sentry_token"),
)


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
