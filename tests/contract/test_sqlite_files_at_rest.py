"""Files at rest (issue 11, item 8; SPEC §3.1): the database and its `-wal`/`-shm` are 0600
like the key file, and a database path with `#`, `?` or `%` in it works, read-only opens too."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.sqlite.database import holds_encrypted_data
from adapters.wiring import open_database
from tests.support.builders import a_settings

ODD_NAME = "a#b?c%d.db"


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    previous = os.umask(value)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def database_files(database: Path) -> list[Path]:
    return [database, Path(f"{database}-wal"), Path(f"{database}-shm")]


def test_the_database_and_its_wal_and_shm_are_created_0600(tmp_path: Path) -> None:
    settings = a_settings(tmp_path)
    with umask(0o022):  # the usual umask would give 0644
        database = open_database(settings)
        try:
            database.write_sync(lambda db: db.execute(
                "INSERT INTO meta (key, value) VALUES ('probe', 'x')"))
            files = database_files(settings.database)
            assert all(path.exists() for path in files)
            assert {path.name: mode(path) for path in files} == {
                path.name: 0o600 for path in files}
        finally:
            database.close()


def test_wal_and_shm_recreated_by_another_connection_are_0600_too(tmp_path: Path) -> None:
    """A process's loop connection (a plain sqlite3 open) may be the one that recreates them."""
    settings = a_settings(tmp_path)
    open_database(settings).close()  # the last close removes -wal and -shm
    with umask(0o022):
        conn = sqlite3.connect(str(settings.database), isolation_level=None)
        try:
            conn.execute("INSERT INTO meta (key, value) VALUES ('probe', 'x')")
            files = database_files(settings.database)
            assert all(path.exists() for path in files)
            assert [mode(path) for path in files] == [0o600] * 3
        finally:
            conn.close()


def test_the_umask_is_restored_after_opening(tmp_path: Path) -> None:
    with umask(0o022):
        open_database(a_settings(tmp_path)).close()
        assert os.umask(0o022) == 0o022


@pytest.mark.parametrize("name", [ODD_NAME, "100%.db", "what?.db", "#1.db", "sp ace.db"])
def test_a_database_path_with_uri_characters_opens_writes_and_reads(
    tmp_path: Path, name: str
) -> None:
    directory = tmp_path / "tmp"
    directory.mkdir()
    path = directory / name
    settings = a_settings(database=str(path))
    database = open_database(settings)
    try:
        database.write_sync(lambda db: db.execute(
            "INSERT INTO meta (key, value) VALUES ('probe', 'written')"))
        value = database.read_sync(
            lambda db: db.execute("SELECT value FROM meta WHERE key = 'probe'").fetchone()[0])
        assert value == "written"
        asyncio.run(database.ping())  # the read-only probe of /health
    finally:
        database.close()
    assert holds_encrypted_data(path)  # the read-only look before start-up
    reopened = open_database(settings)  # and the key check reads it back
    reopened.close()
    # The file has exactly that name; nothing was made of a truncated one.
    assert sorted(p.name for p in directory.iterdir() if not p.name.endswith(".key")) == [name]


def test_the_read_only_uri_names_the_file_and_cannot_write(tmp_path: Path) -> None:
    from adapters.sqlite.database import read_only_uri

    path = tmp_path / ODD_NAME
    open_database(a_settings(database=str(path))).close()
    conn = sqlite3.connect(read_only_uri(path), uri=True)
    try:
        assert conn.execute("SELECT count(*) FROM meta").fetchone()[0] >= 1
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
    finally:
        conn.close()


def test_a_read_only_look_at_an_absent_odd_path_creates_nothing(tmp_path: Path) -> None:
    assert not holds_encrypted_data(tmp_path / ODD_NAME)
    assert list(tmp_path.iterdir()) == []
