"""The leak scanner of the hostile-input suite can fail: it finds what is planted."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.leak_scan import Leak, database_files, find_leaks

SECRET = "planted-shared-secret-0123456789abcdef"


def test_a_planted_secret_is_found_in_each_place_it_occurs() -> None:
    places = {
        "log": b"INFO started\nWARNING token " + SECRET.encode() + b" refused\n",
        "body": b'{"detail": "unauthorized"}',
        "wal": b"\x00\x01" + SECRET.encode() + b"\xff",
    }
    leaks = find_leaks({"shared secret": SECRET}, places)
    assert leaks == [Leak("shared secret", "log"), Leak("shared secret", "wal")]


def test_nothing_is_found_when_nothing_leaked() -> None:
    assert find_leaks({"shared secret": SECRET}, {"log": b"all quiet"}) == []


def test_a_secret_too_short_to_scan_for_is_refused_rather_than_ignored() -> None:
    with pytest.raises(ValueError):
        find_leaks({"short": "abc"}, {"log": b"abc"})


def test_database_files_include_the_wal_and_leave_the_key_file_out(tmp_path: Path) -> None:
    database = tmp_path / "sentry-jira.db"
    key_file = tmp_path / "sentry-jira.db.key"
    key_file.write_text(SECRET)
    conn = sqlite3.connect(database)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (v TEXT)")
        conn.execute("INSERT INTO t VALUES (?)", (SECRET,))
        conn.commit()
        files = database_files(tmp_path, exclude=[key_file])
        assert str(key_file) not in files
        assert str(database) + "-wal" in files
        assert find_leaks({"secret": SECRET}, files) != []  # the row is in the WAL or the file
    finally:
        conn.close()
