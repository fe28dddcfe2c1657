"""The PostgreSQL foundation (SPEC §9): one async connection pool per process, migrations
and the key check at start-up, and the W10 mapping of every outage to `Unavailable`.

The pool opens lazily on the event loop that first uses it (the CLI runs each command in
its own loop; `serve` in one). A connection is waited for at most `acquire_timeout` (1 s):
no connection free, or the server unreachable, is `Unavailable(retry_after=1)` — the
acknowledgement path answers 503 with `Retry-After` and has written nothing (W10).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import psycopg_pool
from psycopg.rows import TupleRow

from adapters.crypto import SecretBox, SecretBoxError
from adapters.postgres.schema import migrate
from core.model.errors import Unavailable

KEY_CHECK_PLAINTEXT = "sentry-jira key check"  # the same marker as SQLite's
ACQUIRE_TIMEOUT_SECONDS = 1.0  # W10: no connection within 1 s → 503
# A statement waiting on a lock (a long transaction of another process, a schema change)
# gives up after this, like SQLite's 5 s busy timeout: 503, never a request hung for ever.
LOCK_TIMEOUT_MS = 5000
# No statement holds a pooled connection longer than this (docs/operations.md, "Statement
# timeout"): twice the lock timeout, so a lock wait still ends as a lock timeout first; far
# above any query of the acknowledgement path, the worker or the admin API (milliseconds).
STATEMENT_TIMEOUT_MS = 10_000

log = logging.getLogger("sentry_jira.postgres")

Connection = psycopg.AsyncConnection[TupleRow]


class KeyMismatchError(Exception):
    """The database holds encrypted data that the configured keys cannot read."""


class PgDatabase:
    """A PostgreSQL database: the pool, the secret box, start-up checks."""

    def __init__(self, conninfo: str, box: SecretBox, *, pool_size: int = 10,
                 acquire_timeout: float = ACQUIRE_TIMEOUT_SECONDS,
                 read_only: bool = False) -> None:
        self.conninfo = conninfo
        # A read-only command's database: every pooled transaction is READ ONLY (the server
        # refuses any write), and start-up neither migrates nor marks (wiring.open_postgres).
        self.read_only = read_only
        self.box = box
        self.pool_size = pool_size
        self.acquire_timeout = acquire_timeout
        self._pool: psycopg_pool.AsyncConnectionPool[Connection] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._checking: asyncio.Task[None] | None = None

    # -- start-up (blocking: before any loop runs) ---------------------------------------

    def migrate(self) -> list[str]:
        try:
            return migrate(self.conninfo)
        except psycopg.OperationalError as err:
            raise Unavailable(_reason(err), retry_after=5) from None

    def check_key(self) -> None:
        """Refuse keys that cannot read this database; mark a fresh database with ours
        (a read-only `PgDatabase` marks nothing: an unmarked database stays unmarked)."""
        try:
            with psycopg.connect(self.conninfo, autocommit=True) as conn:
                if not self.read_only:
                    conn.execute("INSERT INTO meta (key, value) VALUES ('key_check', %s) "
                                 "ON CONFLICT (key) DO NOTHING",
                                 [self.box.encrypt(KEY_CHECK_PLAINTEXT)])
                row = conn.execute("SELECT value FROM meta WHERE key = 'key_check'").fetchone()
        except psycopg.OperationalError as err:
            raise Unavailable(_reason(err), retry_after=5) from None
        if row is None and self.read_only:
            return
        assert row is not None
        try:
            plain = self.box.decrypt(row[0])
        except SecretBoxError:
            plain = None
        if plain != KEY_CHECK_PLAINTEXT:
            raise KeyMismatchError("the database holds data encrypted with another secret key")

    # -- the pool ------------------------------------------------------------------------

    async def _opened(self) -> psycopg_pool.AsyncConnectionPool[Connection]:
        loop = asyncio.get_running_loop()
        if self._pool is not None and self._loop is loop:
            return self._pool
        if self._pool is not None:  # a pool of a loop that has ended (CLI): start afresh
            self._pool = None
        configure = _configure_read_only if self.read_only else _configure
        pool: psycopg_pool.AsyncConnectionPool[Connection] = psycopg_pool.AsyncConnectionPool(
            self.conninfo, min_size=1, max_size=self.pool_size, open=False,
            kwargs={"autocommit": True}, timeout=self.acquire_timeout, configure=configure,
            reconnect_timeout=0,  # keep trying in the background while the server is down
            name="sentry-jira",
        )
        self._pool, self._loop = pool, loop
        await pool.open(wait=False)
        return pool

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled connection in autocommit mode; every outage is `Unavailable` (W10)."""
        pool = await self._opened()
        try:
            async with pool.connection(timeout=self.acquire_timeout) as conn:
                yield conn
        except psycopg_pool.PoolTimeout:
            raise Unavailable("the database is busy or unreachable; retry shortly",
                              retry_after=1) from None
        except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable) as err:
            # The statement or lock timeout: this statement was cancelled (its transaction
            # rolled back), the connection itself is fine and goes back to the pool.
            raise Unavailable(_reason(err), retry_after=1) from None
        except psycopg.OperationalError as err:
            # A connection that broke (the server restarted) means its idle siblings did
            # too: have the pool test and replace them now, not one failed request each.
            self._check_soon(pool)
            raise Unavailable(_reason(err), retry_after=1) from None

    def _check_soon(self, pool: psycopg_pool.AsyncConnectionPool[Connection]) -> None:
        if self._checking is None or self._checking.done():
            self._checking = asyncio.get_running_loop().create_task(_check(pool))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A pooled connection inside one transaction (committed when the block ends)."""
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def fetchall(self, sql: str, params: Any = None) -> list[TupleRow]:
        async with self.connection() as conn:
            cursor = await conn.execute(sql.encode(), params)
            return await cursor.fetchall()

    async def fetchone(self, sql: str, params: Any = None) -> TupleRow | None:
        async with self.connection() as conn:
            cursor = await conn.execute(sql.encode(), params)
            return await cursor.fetchone()

    async def ping(self) -> None:
        """Raise Unavailable when the server does not answer (health, §A)."""
        await self.fetchone("SELECT 1 FROM meta LIMIT 1")

    async def aclose(self) -> None:
        if self._checking is not None:
            self._checking.cancel()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close(timeout=2)


async def _check(pool: psycopg_pool.AsyncConnectionPool[Connection]) -> None:
    try:
        await pool.check()
    except Exception:  # the server is still down: the next failure checks again
        log.warning("database unavailable: the pool's connections could not be checked")


def _session_settings(read_only: bool) -> bytes:
    """The settings every pooled connection gets once, in one round trip.

    - `lock_timeout`: a statement waiting on a lock gives up after LOCK_TIMEOUT_MS.
    - `statement_timeout`: no statement holds a pooled connection longer than
      STATEMENT_TIMEOUT_MS (a runaway query, a server stalled on I/O): it is cancelled and
      the caller gets `Unavailable` (503 on the acknowledgement path, W10). An operator's own
      value (`options=-c statement_timeout=…` in the URL, `ALTER ROLE … SET statement_timeout`)
      is kept. Migrations, `db copy` and `secrets reencrypt` use their own connections, not
      the pool's, so they run without this limit; the worker's retention prune raises it for
      its own transaction (sync_store.PRUNE_STATEMENT_TIMEOUT_MS).
    - read-only commands: every transaction READ ONLY (the server refuses any write).
    """
    sql = (f"SELECT set_config('lock_timeout', '{int(LOCK_TIMEOUT_MS)}', false), "
           "set_config('statement_timeout', CASE current_setting('statement_timeout') "
           f"WHEN '0' THEN '{int(STATEMENT_TIMEOUT_MS)}' "
           "ELSE current_setting('statement_timeout') END, false)")
    if read_only:
        sql += ", set_config('default_transaction_read_only', 'on', false)"
    return sql.encode()


async def _configure(conn: Connection) -> None:
    """Every pooled connection, once (the URL's own `options` stay as they are)."""
    await conn.execute(_session_settings(read_only=False))


async def _configure_read_only(conn: Connection) -> None:
    """A read-only command's pooled connection: as `_configure`, and every transaction
    READ ONLY, so a write the command should never make is refused by the server."""
    await conn.execute(_session_settings(read_only=True))


def _reason(err: psycopg.OperationalError) -> str:
    # libpq's message may name the host and user but never the password; still, keep it
    # out of responses: the detail is fixed text.
    log.warning("database unavailable: %s", type(err).__name__)
    return "the database is unavailable"
