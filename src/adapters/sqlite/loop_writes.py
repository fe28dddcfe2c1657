"""Write transactions of the worker on the event loop's connection (`LoopConnection`).

Why not the storage thread: a transaction there holds SQLite's write lock while its thread
waits for the GIL between statements, and under load the event loop holds the GIL most of the
time — the ack path's commits then find the database busy and back off, and throughput
collapses. On the loop's own connection the worker's transactions and the ack path's are
serialised on one thread instead (and share group commits); each is a few short statements.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

import sqlite_utils

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

    def _wrapped(self, conn: sqlite3.Connection) -> sqlite_utils.Database:
        if self._db is None or self._db.conn is not conn:
            self._db = sqlite_utils.Database(conn, recursive_triggers=False,
                                             execute_plugins=False)
        return self._db
