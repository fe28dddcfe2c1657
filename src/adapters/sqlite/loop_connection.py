"""A second SQLite connection that lives on the event loop's thread: the hot path's.

The acknowledgement path (W3/W4) makes one short indexed read and one insert per delivery.
Hopping to the storage thread for each would cost more than the work itself, so this
connection runs them in place. It never waits on a lock while holding the loop: its busy
timeout is 0 and a busy database is retried with `asyncio.sleep`, then reported as
`Unavailable` (W10). Writes from concurrent requests are grouped into one transaction per
loop turn (group commit), which keeps the commit cost per delivery small under load.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from adapters.sqlite.database import WAL_SIZE_LIMIT
from core.model.errors import Unavailable

T = TypeVar("T")

BUSY_RETRY_SECONDS = 2.0  # how long a write may wait for the lock before W10's 503
RETRY_AFTER_SECONDS = 1
# A busy database is tried again after 0.5 ms, then at most every 5 ms: the lock holder is
# usually the storage thread's once-a-second RESTART checkpoint (`Database.checkpoint`),
# which holds the write lock for a few milliseconds; a waiting commit resumes soon after.
FIRST_RETRY_SECONDS = 0.0005
MAX_RETRY_SECONDS = 0.005


class LoopConnection:
    """SQLite connection owned by the thread running the event loop (opened lazily)."""

    def __init__(self, path: Path, *, busy_retry_seconds: float = BUSY_RETRY_SECONDS,
                 synchronous: str = "NORMAL") -> None:
        self.path = path
        self.synchronous = "FULL" if synchronous.upper() == "FULL" else "NORMAL"
        self.busy_retry_seconds = busy_retry_seconds
        self._conn: sqlite3.Connection | None = None
        self._pending: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._flush_scheduled = False
        self._data_version: int | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=0,
                                   check_same_thread=True)
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            # Checkpoints (with their fsync) would run inside a commit on the loop: the
            # storage thread runs them instead (`Database.checkpoint`, from the lifespan).
            conn.execute("PRAGMA wal_autocheckpoint=0")
            # The hot path writes most of the WAL: when it restarts the WAL, shrink it too.
            conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            self._conn = conn
        return self._conn

    def data_version(self) -> int:
        """Changes whenever another connection commits to the database file.

        Read once per event-loop turn: the requests handled in one turn share the value, so
        a commit by another connection is seen from the next turn on (well under 1 ms).
        """
        if self._data_version is None:
            self._data_version = int(self.conn.execute("PRAGMA data_version").fetchone()[0])
            asyncio.get_running_loop().call_soon(self._forget_data_version)
        return self._data_version

    def _forget_data_version(self) -> None:
        self._data_version = None

    async def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A short read in place; retried while the database is busy."""
        deadline = time.monotonic() + self.busy_retry_seconds
        delay = FIRST_RETRY_SECONDS
        while True:
            try:
                return self.conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as err:
                if not _is_busy(err) or time.monotonic() >= deadline:
                    raise _unavailable(err) from err
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)

    async def read_with(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(conn)` in place, outside any transaction (a few indexed reads: the worker's,
        which would otherwise wait for the GIL on every hop to the storage thread); retried
        while the database is busy."""
        deadline = time.monotonic() + self.busy_retry_seconds
        delay = FIRST_RETRY_SECONDS
        while True:
            try:
                return fn(self.conn)
            except sqlite3.OperationalError as err:
                if not _is_busy(err) or time.monotonic() >= deadline:
                    raise _unavailable(err) from err
            except sqlite3.DatabaseError as err:
                if type(err) is not sqlite3.DatabaseError:
                    raise
                raise _unavailable(err) from err
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)

    def write(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue `fn(conn)` for the next group transaction; the future has its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((fn, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            # Two loop turns, as when a Task ran the flush: the requests of this turn and of
            # the next join the same transaction (one turn only gave smaller groups and more
            # COMMITs under load: docs/performance.md, forgeack). Plain callbacks, not a Task:
            # the commit is synchronous; only a busy database needs a coroutine (`_retry`).
            loop.call_soon(loop.call_soon, self._flush)
        return future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        self._flush_scheduled = False  # later arrivals schedule their own flush
        try:
            self._commit(batch)  # synchronous: no other coroutine runs inside it
            return
        except sqlite3.OperationalError as err:
            if not _is_busy(err):
                _fail(batch, _unavailable(err))
                return
        except sqlite3.DatabaseError as err:
            _fail(batch, _unavailable(err))
            return
        except BaseException as err:
            _fail(batch, err)  # never leave a request waiting on a future nobody sets
            raise
        asyncio.get_running_loop().create_task(self._retry(batch))

    async def _retry(
        self, batch: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]]
    ) -> None:
        """The database was busy: try again with a growing pause, up to the deadline (W10)."""
        deadline = time.monotonic() + self.busy_retry_seconds
        delay = FIRST_RETRY_SECONDS
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)
            try:
                # Synchronous: no other coroutine runs inside this transaction.
                self._commit(batch)
                return
            except sqlite3.OperationalError as err:
                if not _is_busy(err) or time.monotonic() >= deadline:
                    _fail(batch, _unavailable(err))
                    return
            except sqlite3.DatabaseError as err:
                _fail(batch, _unavailable(err))
                return

    def _commit(self, batch: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]]
                ) -> None:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            results = [(future, fn(conn), None) for fn, future in batch]
        except sqlite3.OperationalError as err:
            conn.execute("ROLLBACK")
            if _is_busy(err):
                raise
            self._commit_one_by_one(batch)
            return
        except Exception:
            # One item failed: redo the batch with a savepoint per item, so its error
            # stays its own and the others still commit.
            conn.execute("ROLLBACK")
            self._commit_one_by_one(batch)
            return
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        for future, result, _ in results:
            if not future.done():
                future.set_result(result)

    def _commit_one_by_one(
        self, batch: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]]
    ) -> None:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        results: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            for fn, future in batch:
                conn.execute("SAVEPOINT item")
                try:
                    results.append((future, fn(conn), None))
                    conn.execute("RELEASE item")
                except sqlite3.OperationalError as err:
                    if _is_busy(err):
                        raise  # the whole batch is retried
                    conn.execute("ROLLBACK TO item")
                    conn.execute("RELEASE item")
                    results.append((future, None, _unavailable(err)))
                except Exception as err:  # one item's own error stays its own
                    conn.execute("ROLLBACK TO item")
                    conn.execute("RELEASE item")
                    results.append((future, None, err))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        for future, result, error in results:
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _fail(batch: list[tuple[Any, asyncio.Future[Any]]], error: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)


def _is_busy(err: sqlite3.OperationalError) -> bool:
    text = str(err).lower()
    return "locked" in text or "busy" in text


def _unavailable(err: sqlite3.Error) -> Unavailable:
    if isinstance(err, sqlite3.OperationalError) and _is_busy(err):
        return Unavailable("the database is busy; retry shortly", retry_after=RETRY_AFTER_SECONDS)
    return Unavailable("the database is unavailable", retry_after=5)
