"""`secrets reencrypt`: every encrypted value and the key check under the first key (§A).

One `BEGIN IMMEDIATE` transaction: servers and workers sharing the database keep running
(they wait on the busy timeout at most for the rewrite), and a value no configured key can
read rolls everything back, so the database is never left half under the new key.
"""

from __future__ import annotations

import sqlite_utils

from adapters.crypto import SecretBoxError
from adapters.sqlite.database import Database
from adapters.sqlite.schema import ENCRYPTED_COLUMNS

KEY_CHECK = "meta.key_check"


class UnreadableValueError(Exception):
    """A stored value cannot be decrypted with the configured keys: nothing was changed."""

    def __init__(self, where: str) -> None:
        super().__init__(f"a value in {where} cannot be decrypted with the configured keys; "
                         "nothing was changed")
        self.where = where


def reencrypt_all(database: Database) -> dict[str, int]:
    """Re-encrypt every registered column and the key check; counts per `table.column`."""
    box = database.box

    def rewrite(db: sqlite_utils.Database) -> dict[str, int]:
        counts: dict[str, int] = {}
        for table, column in ENCRYPTED_COLUMNS:
            where = f"{table}.{column}"
            tokens = [row[0] for row in db.execute(
                f'SELECT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL').fetchall()]
            for token in tokens:
                try:
                    fresh = box.rotate(token)
                except SecretBoxError:
                    raise UnreadableValueError(where) from None
                # A Fernet token is unique (random IV): it names its own row.
                db.execute(f'UPDATE "{table}" SET "{column}" = ? WHERE "{column}" = ?',
                           [fresh, token])
            counts[where] = len(tokens)
        row = db.execute("SELECT value FROM meta WHERE key = 'key_check'").fetchone()
        if row is not None:
            try:
                fresh = box.rotate(row[0])
            except SecretBoxError:
                raise UnreadableValueError(KEY_CHECK) from None
            db.execute("UPDATE meta SET value = ? WHERE key = 'key_check'", [fresh])
        counts[KEY_CHECK] = 0 if row is None else 1
        return counts

    return database.write_sync(rewrite)
