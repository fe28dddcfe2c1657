"""The one registry of stored tables and encrypted columns, for every engine (SPEC §9).

`db copy` (adapters/db_copy.py) copies exactly TABLES, in this order (a table after the
tables it references); `secrets reencrypt` on either engine rewrites exactly
ENCRYPTED_COLUMNS. tests/contract/test_storage_registry.py fails when a table of either
engine's schema is missing here, or when the engines' columns differ.

ENCRYPTED_COLUMNS is declared beside the SQLite schema (adapters/sqlite/schema.py), where
the columns are created; it is the same tuple, read from here.
"""

from __future__ import annotations

import attrs

from adapters.sqlite.schema import ENCRYPTED_COLUMNS


@attrs.frozen
class Table:
    name: str
    key: tuple[str, ...]  # the primary key: the canonical row order of `db copy`'s checksum
    identity: str | None = None  # an auto-assigned id column: its sequence follows a copy


TABLES: tuple[Table, ...] = (
    Table("meta", ("key",)),
    Table("tenants", ("id",), identity="id"),
    Table("bindings", ("tenant_id", "org")),
    Table("links", ("tenant_id", "org", "issue_key", "sentry_issue_id")),
    Table("account_mappings", ("tenant_id", "org", "account_id")),
    Table("search_tokens", ("id",), identity="id"),
    Table("used_lifecycle_tokens", ("token_hash",)),
    Table("used_forge_tokens", ("jti_hash",)),  # §8.2
    Table("deliveries", ("id",), identity="id"),
    Table("sync_plans", ("delivery_row",)),
    Table("sync_actions", ("id",), identity="id"),
    Table("sync_watermarks", ("tenant_id", "issue_id", "org", "kind")),
    Table("sync_journal", ("id",), identity="id"),
    Table("sync_workers", ("worker",)),
)

# Each engine's own bookkeeping: never copied.
MIGRATION_TABLES = frozenset({"_sqlite_migrations", "schema_migrations", "sqlite_sequence"})

__all__ = ["ENCRYPTED_COLUMNS", "MIGRATION_TABLES", "TABLES", "Table"]
