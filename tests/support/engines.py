"""Both storage engines for end-to-end tests (SPEC §9): where a test's database is, the
environment that points `serve` at it, and every row of it read as an outsider would (a
read-only SQLite open, or a separate PostgreSQL connection) to prove what was and was not
stored.

`Storage` is what the `storage` / `module_storage` fixtures of tests/e2e/conftest.py give: a
SQLite file in the test's directory, or a fresh, empty PostgreSQL database of the session's
throwaway cluster (which `serve` migrates, as in production).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import attrs

from tests.support.builders import TEST_FERNET_KEY
from tests.support.leak_scan import database_files
from tests.support.webhook_sites import table_rows as sqlite_table_rows

ENGINES = ("sqlite", "postgres")
Where = Path | str  # a SQLite file, or a postgresql:// URL


def is_postgres(where: Where) -> bool:
    return isinstance(where, str) and where.startswith(("postgresql://", "postgres://"))


@attrs.frozen
class Storage:
    kind: str  # "sqlite" or "postgres"
    url: str | None = None  # the PostgreSQL database's URL

    def where(self, directory: Path, name: str = "sentry-jira.db") -> Where:
        return self.url if self.url is not None else directory / name

    def env(self, directory: Path, name: str = "sentry-jira.db") -> dict[str, str]:
        """SENTRY_JIRA_DATABASE (and, for PostgreSQL, the key it requires)."""
        if self.url is None:
            return {"SENTRY_JIRA_DATABASE": str(directory / name)}
        return {"SENTRY_JIRA_DATABASE": self.url, "SENTRY_JIRA_SECRET_KEY": TEST_FERNET_KEY}


def table_rows(where: Where) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, each table's rows in a stable order."""
    if is_postgres(where):
        import psycopg

        with psycopg.connect(str(where), autocommit=True) as conn:
            names = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "ORDER BY tablename")]
            return {name: sorted(conn.execute(f'SELECT * FROM "{name}"'.encode()).fetchall(),
                                 key=repr)
                    for name in names}
    return sqlite_table_rows(Path(where))


def query(where: Where, sql: str) -> list[tuple[Any, ...]]:
    """One read-only query (written in the SQL both engines share)."""
    if is_postgres(where):
        import psycopg

        with psycopg.connect(str(where), autocommit=True) as conn:
            return conn.execute(sql.encode()).fetchall()
    conn = sqlite3.connect(f"file:{where}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def stored_bytes(where: Where, directory: Path, *,
                 exclude: tuple[Path, ...] = ()) -> dict[str, bytes]:
    """What a leak scan reads: the SQLite files of `directory`, or every PostgreSQL row in
    its text form (a secret stored in clear shows in either)."""
    if is_postgres(where):
        return {"postgres rows": repr(table_rows(where)).encode()}
    return database_files(directory, exclude=exclude)


SQLITE = Storage("sqlite")  # the default of helpers that take a Storage
