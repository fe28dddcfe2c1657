"""The SQLite foundation: connection, pragmas, migrations, write transactions, key check.

A sqlite3 connection belongs to the thread that made it, so each `Database` owns one
thread and every call hops to it. Write transactions start with `BEGIN IMMEDIATE` so
that concurrent writers (other processes, the CLI) wait on the busy timeout instead of
failing with SQLITE_BUSY half-way through a deferred transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import sqlite_utils
from sqlite_utils.migrations import Migrations

from adapters.crypto import SecretBox, SecretBoxError
from core.model.errors import Unavailable

T = TypeVar("T")

KEY_CHECK_PLAINTEXT = "sentry-jira key check"
WAL_SIZE_LIMIT = 64 * 1024 * 1024  # bytes a reset WAL is truncated to (journal_size_limit)
# `Database.checkpoint`: PASSIVE passes (each copies what the one before left, written while it
# ran), then a RESTART when the WAL still holds this many frames (4 MiB of 4 KiB pages).
PASSIVE_PASSES = 2
RESTART_FRAMES = 1024
RESTART_BUSY_TIMEOUT_MS = 20  # the longest one RESTART waits for the write lock, then readers
RESTART_TRIES = 3


class KeyMismatchError(Exception):
    """The database holds encrypted data that the configured keys cannot read."""


class Database:
    """One SQLite database file, one connection, one thread."""

    def __init__(self, path: Path, box: SecretBox, *, busy_timeout_ms: int = 5000,
                 synchronous: str = "NORMAL") -> None:
        self.path = path
        self.box = box
        self.synchronous = _synchronous(synchronous)
        self._busy_timeout_ms = busy_timeout_ms
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._thread_local = threading.local()
        self._db: sqlite_utils.Database = self._executor.submit(self._connect).result()

    def _connect(self) -> sqlite_utils.Database:
        with private_files():
            _create_private(self.path)
            # isolation_level=None: the driver opens no implicit transactions; we do it.
            conn = sqlite3.connect(
                str(self.path), isolation_level=None, timeout=self._busy_timeout_ms / 1000
            )
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed transaction survives a process crash; a power
        # loss may lose the last transactions (docs/operations.md). FULL: it does not.
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")  # the WAL shrinks after a burst
        self._thread_local.owner = True
        return sqlite_utils.Database(conn)

    # -- running work on the connection's thread ---------------------------------------

    async def read(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run `fn(db)` on the connection's thread, outside any write transaction."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guarded, fn, False)

    async def write(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run `fn(db)` inside `BEGIN IMMEDIATE` … `COMMIT` on the connection's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guarded, fn, True)

    def read_sync(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Blocking `read`, for callers without an event loop (start-up, CLI)."""
        return self._executor.submit(self._guarded, fn, False).result()

    def write_sync(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Blocking `write`, for callers without an event loop (start-up, CLI)."""
        return self._executor.submit(self._guarded, fn, True).result()

    def _guarded(self, fn: Callable[[sqlite_utils.Database], T], transaction: bool) -> T:
        try:
            if transaction:
                return self._in_transaction(fn)
            return fn(self._db)
        except sqlite3.OperationalError as err:
            raise Unavailable(_unavailable_reason(err), retry_after=1) from err
        except sqlite3.DatabaseError as err:
            # Integrity and programming errors are bugs or conflicts, not an outage.
            if type(err) is not sqlite3.DatabaseError:
                raise
            raise Unavailable("the database cannot be read", retry_after=5) from err

    def _in_transaction(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            result = fn(db)
        except BaseException:
            db.rollback()
            raise
        db.execute("COMMIT")
        return result

    # -- lifecycle --------------------------------------------------------------------

    def migrate(self, migration_sets: Iterable[Migrations]) -> None:
        """Apply pending migrations; concurrent starters serialise on BEGIN IMMEDIATE."""
        for migrations in migration_sets:
            self.write_sync(migrations.apply)

    def check_key(self, *, mark: bool = True) -> None:
        """Refuse keys that cannot read this database; mark a fresh database with ours
        (`mark=False`, a read-only command: an unmarked database stays unmarked)."""

        def check(db: sqlite_utils.Database) -> None:
            row = next(db.query("SELECT value FROM meta WHERE key = 'key_check'"), None)
            if row is None:
                if not mark:
                    return
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('key_check', ?)",
                    [self.box.encrypt(KEY_CHECK_PLAINTEXT)],
                )
                return
            try:
                plain = self.box.decrypt(row["value"])
            except SecretBoxError:
                plain = None
            if plain != KEY_CHECK_PLAINTEXT:
                raise KeyMismatchError("the database holds data encrypted with another secret key")

        (self.write_sync if mark else self.read_sync)(check)

    async def ping(self) -> None:
        """Raise Unavailable when the database file does not answer a fresh reader.

        A new read-only connection notices what the long-lived one may not (the file
        replaced, corrupted or made unreadable under it).
        """

        def probe(_: sqlite_utils.Database) -> None:
            conn = sqlite3.connect(read_only_uri(self.path), uri=True, timeout=1)
            try:
                conn.execute("SELECT count(*) FROM meta").fetchone()
            finally:
                conn.close()

        await self.read(probe)

    async def checkpoint(self) -> tuple[int, int, int]:
        """Copy the WAL back into the database file, and keep the WAL from growing for ever.

        PASSIVE passes copy pages without blocking anyone. But SQLite starts the WAL over only
        when a writer begins while every frame is copied back, and under writes that never
        pause a pass always ends behind the newest frames: the WAL then grows without bound
        (444 MB after 17 s of acknowledgements; docs/performance.md), every pass copies more,
        and the first commit after the load stops truncates the file on the event loop
        (a 180 ms stall). So when the WAL still holds more than `RESTART_FRAMES` frames after
        the passes, a RESTART checkpoint takes the write lock for the short copy of what the
        last pass left, and this thread's next commit starts the WAL from its beginning.
        Returns the last pass's (busy, frames in the WAL, frames copied).
        """

        def run(db: sqlite_utils.Database) -> tuple[int, int, int]:
            def checkpoint(mode: str) -> tuple[int, int, int]:
                busy, frames, copied = db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
                return int(busy), int(frames), int(copied)

            for _ in range(PASSIVE_PASSES):
                result = checkpoint("PASSIVE")
                if result[1] < RESTART_FRAMES:
                    return result
            # RESTART holds the write lock while it waits for readers of the old WAL (a
            # backup, a slow reader in another process): each try waits briefly, and after a
            # few the WAL waits for the next checkpoint — never long enough for the ack path's
            # commits to time out (W10); between tries they get the lock.
            db.execute(f"PRAGMA busy_timeout={RESTART_BUSY_TIMEOUT_MS}")
            try:
                for _ in range(RESTART_TRIES):
                    result = checkpoint("RESTART")
                    if result[0] == 0:
                        break
                    time.sleep(RESTART_BUSY_TIMEOUT_MS / 1000)
            finally:
                db.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            if result[0] == 0:
                # The next commit starts the WAL over, writing its header and syncing it
                # (fdatasync even with synchronous=NORMAL). Let it be this thread's: one page
                # rewritten as it was, before the event loop's group commit gets the lock.
                with_transaction(db, lambda: db.execute(
                    f"PRAGMA user_version={int(db.execute('PRAGMA user_version').fetchone()[0])}"))
            return result

        return await self.read(run)

    def close(self) -> None:
        try:
            self._executor.submit(self._db.close).result()
        finally:
            self._executor.shutdown(wait=True)


def with_transaction(db: sqlite_utils.Database, fn: Callable[[], object]) -> None:
    """`fn()` inside `BEGIN IMMEDIATE` … `COMMIT` on a connection outside any transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        fn()
    except BaseException:
        db.rollback()
        raise
    db.execute("COMMIT")


def holds_encrypted_data(path: Path) -> bool:
    """True when a database file exists and already carries a key check (read-only look)."""
    if not path.exists():
        return False
    try:
        conn = sqlite3.connect(read_only_uri(path), uri=True)
        try:
            row = conn.execute("SELECT 1 FROM meta WHERE key = 'key_check'").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return path.stat().st_size > 0
    return row is not None


def read_only_uri(path: Path) -> str:
    """A read-only `file:` URI naming `path`, whatever its characters (`#`, `?`, `%`, …)."""
    return "file:" + urllib.parse.quote(str(path.absolute()), safe="/") + "?mode=ro"


_umask_lock = threading.Lock()


@contextlib.contextmanager
def private_files() -> Iterator[None]:
    """Files created inside are 0600, like the key file: the umask is process-wide, so the
    window is short (one open) and serialised."""
    with _umask_lock:
        previous = os.umask(0o077)
        try:
            yield
        finally:
            os.umask(previous)


def _create_private(path: Path) -> None:
    """Create an absent database file 0600: SQLite gives its `-wal` and `-shm` the same mode,
    whichever process creates them later."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _unavailable_reason(err: sqlite3.OperationalError) -> str:
    text = str(err).lower()
    if "locked" in text or "busy" in text:
        return "the database is busy; retry shortly"
    return "the database is unavailable"


def _synchronous(value: str) -> str:
    """SQLite's `synchronous` level: NORMAL or FULL (SENTRY_JIRA_SQLITE_SYNCHRONOUS)."""
    level = value.upper()
    if level not in ("NORMAL", "FULL"):
        raise ValueError("synchronous must be NORMAL or FULL")
    return level
