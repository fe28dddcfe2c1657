"""The worker's reads and write transactions on the event loop's connection (`LoopConnection`).

Why not the storage thread: a transaction there holds SQLite's write lock while its thread
waits for the GIL between statements, and under load the event loop holds the GIL most of the
time — the ack path's commits then find the database busy and back off, and throughput
collapses. On the loop's own connection the worker's transactions and the ack path's are
serialised on one thread instead (and share group commits); each is a few short statements.

Reads too: a hop to the storage thread and back waits for the GIL twice, and while the loop
serves requests it holds the GIL for up to a switch interval (5 ms) at a time — a delivery's
half-dozen short indexed reads then took longer than everything else it does. `LoopDatabase`
gives the worker's stores (tenants, bindings, links, accounts) a `Database` whose reads run in
place on the loop's connection (their rare writes still go to the storage thread).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

import sqlite_utils

from adapters.sqlite.database import Database
from adapters.sqlite.loop_connection import LoopConnection

T = TypeVar("T")


class LoopWriter:
    def __init__(self, loop_connection: LoopConnection) -> None:
        self._loop = loop_connection
        self._db: sqlite_utils.Database | None = None

    async def write(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run `fn(db)` inside the loop connection's next write transaction. `fn` must only
        change the database: it may run twice when another item of its group fails."""
        return await self._loop.write(lambda conn: fn(self._wrapped(conn)))

    async def read(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run `fn(db)` in place on the loop's connection, outside any transaction."""
        return await self._loop.read_with(lambda conn: fn(self._wrapped(conn)))

    def _wrapped(self, conn: sqlite3.Connection) -> sqlite_utils.Database:
        if self._db is None or self._db.conn is not conn:
            self._db = sqlite_utils.Database(conn, recursive_triggers=False,
                                             execute_plugins=False)
        return self._db


class LoopDatabase(Database):
    """`Database` for the worker's stores: reads in place on the event loop's connection;
    writes and the blocking calls (start-up, CLI) go to the real database.
    It opens no connection and no thread of its own."""

    def __init__(self, database: Database, loop_connection: LoopConnection) -> None:
        # Deliberately not Database.__init__: that opens a connection and a thread.
        self.path = database.path
        self.box = database.box
        self.synchronous = database.synchronous
        self._database = database
        self._writer = LoopWriter(loop_connection)

    async def read(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        return await self._writer.read(fn)

    async def write(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        # The stores' own writes (W7's re-key, rare) keep the storage thread and its
        # connection's settings (foreign keys): exactly as before.
        return await self._database.write(fn)

    def read_sync(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        return self._database.read_sync(fn)

    def write_sync(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        return self._database.write_sync(fn)

    async def ping(self) -> None:
        await self._database.ping()

    async def checkpoint(self) -> tuple[int, int, int]:
        return await self._database.checkpoint()

    def close(self) -> None:
        """The real database and the loop connection are closed by their owner."""
