"""Find every (table, column) of a SQLite database that holds a Fernet token, by value and by
the schema's own comments, to hold the encrypted-column registry to the truth (§9, item 4)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

# A Fernet token: version byte 0x80 then a timestamp, base64url: always starts "gAAAAA".
FERNET_SHAPE = re.compile(r"gAAAAA[A-Za-z0-9_-]{40,}={0,2}")
KEY_CHECK = ("meta", "value")  # the key check row: re-encrypted by name, not by column


def columns_holding_fernet_tokens(path: Path, keys: list[str]) -> set[tuple[str, str]]:
    """Columns with a value that looks like a Fernet token or decrypts under `keys`."""
    box = MultiFernet([Fernet(key) for key in keys])
    found: set[tuple[str, str]] = set()
    conn = sqlite3.connect(path)
    try:
        tables = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        for table in tables:
            columns = [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]
            for column in columns:
                for (value,) in conn.execute(f'SELECT "{column}" FROM "{table}"'):
                    if _is_fernet(value, box):
                        found.add((table, column))
                        break
    finally:
        conn.close()
    return found


def columns_declared_encrypted(path: Path) -> set[tuple[str, str]]:
    """Columns whose CREATE TABLE line says they are encrypted (`-- Fernet-encrypted`)."""
    found: set[tuple[str, str]] = set()
    conn = sqlite3.connect(path)
    try:
        for table, sql in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL"):
            for line in sql.splitlines():
                if "encrypt" in line.lower() and "--" in line:
                    found.add((table, line.split()[0].strip('"')))
    finally:
        conn.close()
    return found


def _is_fernet(value: object, box: MultiFernet) -> bool:
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return False
    if not isinstance(value, str):
        return False
    if FERNET_SHAPE.search(value):
        return True
    try:
        box.decrypt(value.encode("ascii"))
    except (InvalidToken, UnicodeError, ValueError):
        return False
    return True
