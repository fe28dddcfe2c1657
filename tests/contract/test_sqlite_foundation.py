"""The SQLite foundation: pragmas, the secret key file, key rotation and key refusal (SPEC §3.1)."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from adapters.config import ConfigError, load_settings
from adapters.sqlite.tenants import SqliteTenantStore
from adapters.wiring import open_database
from tests.support.admin_api import an_installation
from tests.support.builders import TEST_FERNET_KEY, a_settings


def test_wal_mode_and_busy_timeout_are_set(tmp_path: Path) -> None:
    database = open_database(a_settings(tmp_path))
    try:
        mode = database.read_sync(lambda db: db.execute("PRAGMA journal_mode").fetchone()[0])
        timeout = database.read_sync(lambda db: db.execute("PRAGMA busy_timeout").fetchone()[0])
    finally:
        database.close()
    assert mode == "wal"
    assert timeout >= 1000


def test_unset_secret_key_generates_a_0600_key_file_beside_the_database(tmp_path: Path) -> None:
    settings = load_settings({"SENTRY_JIRA_DATABASE": str(tmp_path / "db.sqlite")})
    open_database(settings).close()
    key_file = tmp_path / "db.sqlite.key"
    assert key_file.exists()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    Fernet(key_file.read_text().strip().encode())  # a valid Fernet key
    open_database(settings).close()  # the same file is read again, not replaced
    assert key_file.exists()


def test_a_missing_key_file_over_encrypted_data_refuses_to_start(tmp_path: Path) -> None:
    settings = load_settings({"SENTRY_JIRA_DATABASE": str(tmp_path / "db.sqlite")})
    open_database(settings).close()
    (tmp_path / "db.sqlite.key").unlink()
    with pytest.raises(ConfigError, match="SENTRY_JIRA_SECRET_KEY"):
        open_database(settings)
    assert not (tmp_path / "db.sqlite.key").exists()  # no new key generated over old data


def test_a_wrong_secret_key_refuses_to_start(tmp_path: Path) -> None:
    open_database(a_settings(tmp_path)).close()
    other = Fernet.generate_key().decode()
    with pytest.raises(ConfigError, match="SENTRY_JIRA_SECRET_KEY") as err:
        open_database(a_settings(tmp_path, secret_key=other))
    assert other not in str(err.value)


async def test_a_rotated_key_list_still_reads_old_data(tmp_path: Path) -> None:
    old_secret, new_secret = "secret-written-under-the-old-key", "secret-written-after-rotation"
    database = open_database(a_settings(tmp_path))
    try:
        await SqliteTenantStore(database).upsert_installed(an_installation("old", old_secret))
    finally:
        database.close()
    new = Fernet.generate_key().decode()
    database = open_database(a_settings(tmp_path, secret_key=f"{new},{TEST_FERNET_KEY}"))
    try:
        tenants = SqliteTenantStore(database)
        old_tenant = await tenants.by_client_key("old")
        await tenants.upsert_installed(an_installation("new", new_secret))
    finally:
        database.close()
    assert old_tenant is not None and old_tenant.shared_secret == old_secret
    # New writes use the first key of the list: the new key alone decrypts them.
    with sqlite3.connect(tmp_path / "sentry-jira.db") as raw:
        [(stored,)] = raw.execute("SELECT shared_secret FROM tenants WHERE client_key = 'new'")
    assert Fernet(new.encode()).decrypt(stored.encode()).decode() == new_secret


def test_write_transactions_begin_immediate(tmp_path: Path) -> None:
    database = open_database(a_settings(tmp_path))
    other = sqlite3.connect(
        tmp_path / "sentry-jira.db", isolation_level=None, timeout=0, check_same_thread=False
    )
    try:

        def hold(db: object) -> bool:
            # Inside write(): another connection cannot start a write transaction.
            try:
                other.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                return True
            other.execute("ROLLBACK")
            return False

        assert database.write_sync(hold) is True
    finally:
        other.close()
        database.close()
