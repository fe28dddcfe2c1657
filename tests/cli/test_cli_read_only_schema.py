"""§9, §3 (#16): a read-only command never migrates, on either engine.

An operator pointing `tenants list` (or any read-only command) at the wrong database — an
empty one, another application's, or one of an older sentry-jira — gets one line on stderr
naming what creates the schema (`serve` or `worker`), exit 1, and the database is exactly as
it was: no table created, no key check written. On PostgreSQL a read-only command's
connections are READ ONLY besides, so a write it should never make is refused by the server.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from adapters.cli.main import main
from adapters.crypto import SecretBox
from adapters.postgres.database import PgDatabase
from adapters.postgres.schema import STEPS, migrate, pending_steps
from adapters.wiring import open_database
from tests.cli.test_cli_ops import READ_ONLY  # the same read-only commands
from tests.support.builders import TEST_FERNET_KEY, a_settings
from tests.support.postgres import PostgresCluster

NO_SCHEMA = "holds no sentry-jira schema; `sentry-jira serve` or `sentry-jira worker` creates it"


def cli(database: str, *args: str) -> Result:
    env = {"SENTRY_JIRA_DATABASE": database, "SENTRY_JIRA_SECRET_KEY": TEST_FERNET_KEY}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def refused(result: Result, text: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sentry-jira: "), result.stderr
    assert text in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""


# -- SQLite ---------------------------------------------------------------------------------


def sqlite_tables(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master"))
    finally:
        conn.close()


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_a_read_only_command_on_an_empty_sqlite_file_creates_no_schema(
    tmp_path: Path, args: list[str]
) -> None:
    """§9: an existing, empty file (0 bytes) is not a sentry-jira database: refused, exit 1,
    the file still empty, no key file made beside it."""
    path = tmp_path / "empty.db"
    path.touch()
    refused(cli(str(path), *args), f"{path.absolute()} {NO_SCHEMA}")
    assert path.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]


def test_a_read_only_command_on_another_applications_sqlite_file_changes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    refused(cli(str(path), "tenants", "list"), NO_SCHEMA)
    assert sqlite_tables(path) == ["invoices"]
    assert path.read_bytes() == before


def test_a_read_only_command_on_an_older_sqlite_schema_migrates_nothing(tmp_path: Path) -> None:
    """A schema one migration behind (an upgrade before `serve` restarted): refused, the
    migration still pending afterwards."""
    settings = a_settings(tmp_path)
    open_database(settings).close()
    conn = sqlite3.connect(settings.database)
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'add_forge_sites'")
    conn.commit()
    conn.close()
    refused(cli(str(settings.database), "dead-letters", "list"),
            "the sentry-jira schema is older than this version (1 migrations pending)")
    conn = sqlite3.connect(settings.database)
    names = {r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations")}
    conn.close()
    assert "add_forge_sites" not in names


def test_a_read_only_command_on_a_current_sqlite_schema_answers(tmp_path: Path) -> None:
    settings = a_settings(tmp_path)
    open_database(settings).close()
    result = cli(str(settings.database), "tenants", "list")
    assert result.exit_code == 0, result.output
    assert "no tenants yet" in result.stdout


# -- PostgreSQL -----------------------------------------------------------------------------


def pg_tables(url: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT relname FROM pg_class c JOIN pg_namespace n "
                            "ON n.oid = c.relnamespace WHERE n.nspname = 'public'").fetchall()
    return sorted(r[0] for r in rows)


@pytest.fixture
def empty_pg(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """A PostgreSQL database with nothing in it (not the migrated template)."""
    url = postgres_cluster.database(migrated=False)
    yield url
    postgres_cluster.drop(url)


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_a_read_only_command_on_an_empty_postgres_database_creates_no_tables(
    empty_pg: str, args: list[str]
) -> None:
    """#16: `tenants list` against an empty PostgreSQL database used to run the migrations
    there. Now: refused, exit 1, and the database has no tables afterwards."""
    refused(cli(empty_pg, *args), NO_SCHEMA)
    assert pg_tables(empty_pg) == []


def test_a_read_only_command_on_another_applications_postgres_database_changes_nothing(
    empty_pg: str,
) -> None:
    """Another application's database, even one with its own `schema_migrations` table
    (Rails, Flyway-like tools): refused, its tables as they were."""
    with psycopg.connect(empty_pg, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_migrations (version text PRIMARY KEY)")
        conn.execute("INSERT INTO schema_migrations VALUES ('20240101')")
    before = pg_tables(empty_pg)
    refused(cli(empty_pg, "journal", "1"), NO_SCHEMA)
    assert pg_tables(empty_pg) == before
    with psycopg.connect(empty_pg, autocommit=True) as conn:  # one with a `name` column too
        conn.execute("ALTER TABLE schema_migrations ADD COLUMN name text")
    refused(cli(empty_pg, "journal", "1"), NO_SCHEMA)
    assert pg_tables(empty_pg) == before
    with psycopg.connect(empty_pg) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (1,)


def test_a_read_only_command_on_an_older_postgres_schema_migrates_nothing(empty_pg: str) -> None:
    migrate(empty_pg)
    last = STEPS[-1].name
    with psycopg.connect(empty_pg, autocommit=True) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE name = %s", [last])
    refused(cli(empty_pg, "tenants", "list"),
            "the sentry-jira schema is older than this version (1 migrations pending)")
    assert pending_steps(empty_pg) == [last]


def test_a_write_command_on_an_empty_postgres_database_creates_the_schema(empty_pg: str) -> None:
    """The other side of the rule: a command that writes (as `serve` and `worker`) migrates."""
    result = cli(empty_pg, "search-tokens", "create", "acme")
    assert result.exit_code == 0, result.output
    assert pending_steps(empty_pg) == []
    listed = cli(empty_pg, "search-tokens", "list", "acme")
    assert listed.exit_code == 0, listed.output
    assert len(listed.stdout.strip().splitlines()) == 2  # the header and the one token


def test_a_read_only_command_on_an_unmarked_postgres_schema_leaves_it_unmarked(
    postgres_url: str,
) -> None:
    """The key check is a write: a read-only command neither makes nor needs one."""
    result = cli(postgres_url, "dead-letters", "list")
    assert result.exit_code == 0, result.output
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM meta").fetchone() == (0,)


def test_a_read_only_pool_refuses_writes_at_the_server(postgres_url: str) -> None:
    """Defence in depth: a read-only `PgDatabase`'s transactions are READ ONLY."""
    database = PgDatabase(postgres_url, SecretBox((TEST_FERNET_KEY,)), read_only=True)

    async def write() -> None:
        try:
            async with database.connection() as conn:
                await conn.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
        finally:
            await database.aclose()

    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        asyncio.run(write())
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM meta").fetchone() == (0,)


def test_a_read_only_command_on_an_unreachable_postgres_server_is_one_line_exit_2(
    tmp_path: Path,
) -> None:
    """No server on the socket (nothing sent anywhere but a Unix socket path that is not
    there): the start-up line of §3/§9, naming the database without password."""
    url = f"postgresql:///sj?host={tmp_path}&user=ops"
    result = cli(url, "tenants", "list")
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("sentry-jira: configuration error: SENTRY_JIRA_DATABASE: cannot "
                           "connect to postgresql://"), line
    assert "Traceback" not in result.output


def test_the_refusal_names_the_database_without_its_password(empty_pg: str) -> None:
    """§9: the URL is shown only without its password (trust auth here ignores it)."""
    result = cli(empty_pg + "&password=hunter2-never-shown", "tenants", "list")
    refused(result, NO_SCHEMA)
    assert "hunter2" not in result.output
    assert result.stderr.startswith("sentry-jira: postgresql://")
    assert pg_tables(empty_pg) == []
