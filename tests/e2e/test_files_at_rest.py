"""Files at rest through a real `sentry-jira serve` (issue 11, item 8; SPEC §3.1): a database
path with `#`, `?` and `%` serves, survives a restart (the read-only look before start-up),
and the database, its `-wal`/`-shm` and the generated key file are all 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest

from tests.support.process import running_server

pytestmark = pytest.mark.e2e


def test_serve_on_an_odd_database_path_with_0600_files(tmp_path: Path) -> None:
    directory = tmp_path / "tmp"
    directory.mkdir()
    database = directory / "a#b?c%d.db"
    env = {"SENTRY_JIRA_DATABASE": str(database)}  # no secret key: a key file is generated
    previous = os.umask(0o022)
    try:
        for _ in range(2):  # the second start reads the key check through a read-only open
            with running_server(env) as (url, _proc):
                health = httpx.get(url + "/health", timeout=10)  # its probe: a read-only open
                assert health.status_code == 200, health.text
                files = [database, Path(f"{database}-wal"), Path(f"{database}-shm"),
                         Path(f"{database}.key")]
                modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in files}
                assert modes == {path.name: 0o600 for path in files}
    finally:
        os.umask(previous)
    # Nothing was made of a name cut at `#` or `?`.
    names = {path.name for path in directory.iterdir()}
    assert names <= {"a#b?c%d.db", "a#b?c%d.db.key", "a#b?c%d.db-wal", "a#b?c%d.db-shm"}
