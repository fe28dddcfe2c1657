"""`secrets reencrypt` on PostgreSQL (§A, §9): the registry's encrypted columns and the key
check under the first key, in one transaction (a value no key reads rolls it all back)."""

from __future__ import annotations

import psycopg

from adapters.crypto import SecretBox, SecretBoxError
from adapters.sqlite.reencrypt import KEY_CHECK, UnreadableValueError
from adapters.storage_registry import ENCRYPTED_COLUMNS
from core.model.errors import Unavailable


def reencrypt_postgres(conninfo: str, box: SecretBox) -> dict[str, int]:
    """Counts per `table.column`, as adapters/sqlite/reencrypt.py gives them."""
    try:
        with psycopg.connect(conninfo) as conn, conn.transaction():
            counts: dict[str, int] = {}
            for table, column in ENCRYPTED_COLUMNS:
                where = f"{table}.{column}"
                rows = conn.execute(f'SELECT "{column}" FROM "{table}" WHERE "{column}" '
                                    "IS NOT NULL FOR UPDATE".encode()).fetchall()
                for (token,) in rows:
                    try:
                        fresh = box.rotate(token)
                    except SecretBoxError:
                        raise UnreadableValueError(where) from None
                    conn.execute(f'UPDATE "{table}" SET "{column}" = %s WHERE "{column}" = %s'
                                 .encode(), [fresh, token])
                counts[where] = len(rows)
            row = conn.execute(
                "SELECT value FROM meta WHERE key = 'key_check' FOR UPDATE").fetchone()
            if row is not None:
                try:
                    fresh = box.rotate(row[0])
                except SecretBoxError:
                    raise UnreadableValueError(KEY_CHECK) from None
                conn.execute("UPDATE meta SET value = %s WHERE key = 'key_check'", [fresh])
            counts[KEY_CHECK] = 0 if row is None else 1
            return counts
    except psycopg.OperationalError:
        raise Unavailable("the database is unavailable", retry_after=5) from None
