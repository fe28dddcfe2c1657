"""Schema migrations, one `Migrations` set per area so areas evolve independently."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils
from sqlite_utils.migrations import Migrations

from adapters.sqlite import forge, inbox, lifecycle, sync_store

foundation = Migrations("sentry_jira.foundation")

# Every column that holds a Fernet-encrypted value, the one list `secrets reencrypt` (and a
# future `db copy`) reads; tests/contract/test_secrets_reencrypt.py fails when one is missing.
# The key check (`meta` row `key_check`) is re-encrypted beside them.
ENCRYPTED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("tenants", "shared_secret"),
    ("tenants", "webhook_secret"),
    ("tenants", "webhook_secret_previous"),
    ("tenants", "jira_token"),
    ("tenants", "forge_system_token"),
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


# §8.0/§8.1 (#13): webhook sites are rows of `tenants` too (one id space). A webhook site's
# `client_key` is an unguessable stand-in (the API shows null), `shared_secret` stays NULL.
sites = Migrations("sentry_jira.sites")


@sites()
def add_site_transport_columns(db: sqlite_utils.Database) -> None:
    for column in (
        "transport TEXT NOT NULL DEFAULT 'connect' CHECK (transport IN ('connect', 'webhook'))",
        "flavor TEXT NOT NULL DEFAULT 'cloud' CHECK (flavor IN ('cloud', 'data-center'))",
        "webhook_secret TEXT",                   # Fernet-encrypted; NULL once removed
        "webhook_secret_previous TEXT",          # Fernet-encrypted; during a rotation only
        "webhook_secret_previous_until TEXT",    # ISO 8601 UTC: the previous one stops there
        "jira_auth_kind TEXT CHECK (jira_auth_kind IN ('api-token', 'pat'))",
        "jira_email TEXT",                       # the API token's account (Cloud), not secret
        "jira_token TEXT",                       # Fernet-encrypted API token or PAT
    ):
        db.execute(f"ALTER TABLE tenants ADD COLUMN {column}")
    db.execute("CREATE INDEX tenants_base_url ON tenants (base_url, status)")


from adapters.sqlite.admin import admin as _admin_migrations  # noqa: E402

# One set per area, appended; order matters only within a set.
ALL_MIGRATIONS: tuple[Migrations, ...] = (
    foundation,
    sites,
    inbox.migrations,
    _admin_migrations,
    lifecycle.migrations,
    sync_store.migrations,
    forge.migrations,
)


def pending_steps(path: Path) -> list[str] | None:
    """The migrations not yet applied to the file at `path`, read through a read-only open
    (nothing is created or written); None when it holds no sentry-jira schema at all (no
    migration of ours recorded). Read-only commands use this instead of migrating
    (docs/operations.md, "Read-only commands never migrate")."""
    from adapters.sqlite.database import read_only_uri

    conn = sqlite3.connect(read_only_uri(path), uri=True)
    try:
        db = sqlite_utils.Database(conn)
        applied = [m.name for s in ALL_MIGRATIONS for m in s.applied(db)]
        pending = [f"{s.name}:{m.name}" for s in ALL_MIGRATIONS for m in s.pending(db)]
    finally:
        conn.close()
    return pending if applied else None
