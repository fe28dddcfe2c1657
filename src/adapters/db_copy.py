"""`sentry-jira db copy --to <url or path>` (SPEC §9): every table of the registry from the
configured database to an empty one of either engine.

- The target is made (migrated) first, and must hold no row in any registered table.
- A target URL carrying a password is refused before anything is opened: argv is visible
  to every user of the machine (`PGPASSWORD` / `PGPASSFILE` are read by libpq instead).
- Rows are read from one consistent snapshot of the source and written in one transaction
  of the target, table after table in registry order (references before referrers), with
  their values as they are: encrypted columns stay encrypted under the same key.
- Identity sequences are moved past the copied ids (SQLite's `sqlite_sequence` follows
  explicit ids by itself).
- Verified: per table, the target's row count and a SHA-256 over a canonical form of every
  row (ordered by primary key) equal the source's; a mismatch rolls the copy back.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import psycopg

from adapters.crypto import SecretBox
from adapters.sqlite.database import Database, private_files
from adapters.sqlite.schema import ALL_MIGRATIONS
from adapters.storage_registry import TABLES, Table


class CopyRefused(Exception):
    """The copy cannot be made (the message is one line, safe to show)."""


class VerifyFailed(Exception):
    """The target did not read back as the source: the copy was rolled back."""


@attrs.frozen
class TableCopied:
    table: str
    rows: int
    checksum: str


@attrs.frozen
class Engine:
    """How one engine spells what the copy needs."""

    kind: str  # sqlite | postgresql
    placeholder: str

    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'


SQLITE = Engine("sqlite", "?")
POSTGRES = Engine("postgresql", "%s")


def canonical(value: Any) -> Any:
    """One JSON-safe form of a stored value, the same whichever engine returned it."""
    if isinstance(value, memoryview):
        value = bytes(value)
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, float):
        return {"real": value.hex()}  # exact, and never confused with an integer
    return value


def _select(engine: Engine, table: Table, columns: Sequence[str]) -> str:
    cols = ", ".join(engine.quote(c) for c in columns)
    order = ", ".join(engine.quote(c) for c in table.key)
    return f"SELECT {cols} FROM {engine.quote(table.name)} ORDER BY {order}"


def _digest(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> tuple[int, str]:
    digest = hashlib.sha256(json.dumps(list(columns)).encode())
    count = 0
    for row in rows:
        digest.update(json.dumps([canonical(v) for v in row], sort_keys=True).encode() + b"\n")
        count += 1
    return count, digest.hexdigest()


def _columns(conn: Any, engine: Engine, table: str) -> list[str]:
    if engine is SQLITE:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({engine.quote(table)})")]
    return [row[0] for row in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = "
        "current_schema() AND table_name = %s ORDER BY ordinal_position", [table])]


def _fetch(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in conn.execute(sql).fetchall()]


# -- opening each side ----------------------------------------------------------------------


def refuse_password(url: str) -> None:
    from psycopg.conninfo import conninfo_to_dict

    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        raise CopyRefused("the target is not a valid postgresql:// URL") from None
    if info.get("password"):
        raise CopyRefused("the target URL carries a password: the command line is visible to "
                          "every user; give it in PGPASSWORD or PGPASSFILE instead")


@contextmanager
def _sqlite(path: Path, *, read_only: bool) -> Iterator[sqlite3.Connection]:
    from adapters.sqlite.database import read_only_uri

    if read_only:
        conn = sqlite3.connect(read_only_uri(path), uri=True, isolation_level=None)
    else:
        with private_files():
            conn = sqlite3.connect(path, isolation_level=None, timeout=5)
    try:
        conn.execute("PRAGMA foreign_keys=ON")
        yield conn
    finally:
        conn.close()


def prepare_target(target: str, box: SecretBox) -> None:
    """Create the target's schema (migrate it); a SQLite file is made 0600."""
    if is_postgres(target):
        from adapters.postgres.schema import migrate

        refuse_password(target)
        try:
            migrate(target)
        except psycopg.OperationalError:
            raise CopyRefused("cannot connect to the target database") from None
        return
    path = Path(target)
    if not path.absolute().parent.is_dir():
        raise CopyRefused(f"the directory {path.absolute().parent} does not exist")
    database = Database(path, box)
    try:
        database.migrate(ALL_MIGRATIONS)
    finally:
        database.close()


def is_postgres(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


# -- the copy -------------------------------------------------------------------------------


def read_all(conn: Any, engine: Engine) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Every registered table's columns and rows, in canonical order."""
    tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
    for table in TABLES:
        columns = _columns(conn, engine, table.name)
        tables[table.name] = (columns, _fetch(conn, _select(engine, table, columns)))
    return tables


def _write_all(conn: Any, engine: Engine,
               source: dict[str, tuple[list[str], list[tuple[Any, ...]]]]) -> None:
    for table in TABLES:
        columns, rows = source[table.name]
        target_columns = _columns(conn, engine, table.name)
        if sorted(target_columns) != sorted(columns):
            raise CopyRefused(f"the table {table.name} has other columns in the target: are "
                              "both databases of the same version?")
        if not rows:
            continue
        cols = ", ".join(engine.quote(c) for c in columns)
        marks = ", ".join([engine.placeholder] * len(columns))
        sql = f"INSERT INTO {engine.quote(table.name)} ({cols}) VALUES ({marks})"
        if engine is POSTGRES:
            with conn.cursor() as cursor:
                cursor.executemany(sql.encode(), rows)
            if table.identity is not None:
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence(%s, %s), "
                    f"(SELECT max({engine.quote(table.identity)}) FROM "
                    f"{engine.quote(table.name)}))".encode(), [table.name, table.identity])
        else:
            conn.executemany(sql, rows)


def _verify(conn: Any, engine: Engine,
            source: dict[str, tuple[list[str], list[tuple[Any, ...]]]]) -> list[TableCopied]:
    copied = []
    for table in TABLES:
        columns, rows = source[table.name]
        want = _digest(columns, rows)
        got = _digest(columns, _fetch(conn, _select(engine, table, columns)))
        if got != want:
            raise VerifyFailed(f"the table {table.name} did not read back as the source "
                               f"({got[0]} rows, expected {want[0]}): nothing was copied")
        copied.append(TableCopied(table.name, want[0], want[1]))
    return copied


def _non_empty(conn: Any, engine: Engine) -> str | None:
    for table in TABLES:
        if conn.execute(f"SELECT 1 FROM {engine.quote(table.name)} LIMIT 1").fetchone():
            return table.name
    return None


def copy_database(source: str | Path, target: str, box: SecretBox) -> list[TableCopied]:
    """Copy every registered table from `source` (a URL or a SQLite path) to `target`."""
    if is_postgres(target):
        refuse_password(target)
    if str(source) == target:
        raise CopyRefused("the target is the configured database itself")
    prepare_target(target, box)
    with _open(source, read_only=True) as (src, src_engine):
        if src_engine is POSTGRES:
            src.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        else:
            src.execute("BEGIN")  # one snapshot of the whole file
        rows = read_all(src, src_engine)
        src.execute("COMMIT")
    with _open(target, read_only=False) as (dst, dst_engine):
        dst.execute("BEGIN IMMEDIATE" if dst_engine is SQLITE else "BEGIN")
        try:
            taken = _non_empty(dst, dst_engine)
            if taken is not None:
                raise CopyRefused(f"the target is not empty (the table {taken} has rows): "
                                  "db copy only fills an empty database")
            _write_all(dst, dst_engine, rows)
            copied = _verify(dst, dst_engine, rows)
        except BaseException:
            dst.execute("ROLLBACK")
            raise
        dst.execute("COMMIT")
    return copied


@contextmanager
def _open(where: str | Path, *, read_only: bool) -> Iterator[tuple[Any, Engine]]:
    if isinstance(where, str) and is_postgres(where):
        try:
            conn = psycopg.connect(where, autocommit=True)
        except psycopg.OperationalError:
            raise CopyRefused("cannot connect to the database") from None
        with conn:
            yield conn, POSTGRES
        return
    with _sqlite(Path(where), read_only=read_only) as sqlite_conn:
        yield sqlite_conn, SQLITE
