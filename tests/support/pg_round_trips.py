"""Counting what a PostgreSQL store sends to the server (#16): every statement executed on a
psycopg async connection or cursor, and the BEGIN and COMMIT (or ROLLBACK) of every
transaction block — each one round trip to the server.

Used by tests that pin how many round trips the worker makes per delivery; the count is of
this process's psycopg calls only, so nothing else on the cluster disturbs it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import attrs
import psycopg
import pytest


@attrs.define
class RoundTrips:
    statements: list[str] = attrs.Factory(list)

    def __len__(self) -> int:
        return len(self.statements)

    def reset(self) -> None:
        self.statements.clear()


def _text(query: Any) -> str:
    if isinstance(query, bytes):
        return query.decode()
    return str(query)


@contextlib.contextmanager
def counting_round_trips() -> Iterator[RoundTrips]:
    """Patch psycopg's async cursor and connection for the block: every execute (a
    connection's `execute` is its cursor's), every executemany (one entry: psycopg pipelines
    it) and each transaction block's BEGIN and its end (COMMIT or ROLLBACK)."""
    seen = RoundTrips()
    cursor_execute = psycopg.AsyncCursor.execute
    cursor_executemany = psycopg.AsyncCursor.executemany
    transaction = psycopg.AsyncConnection.transaction

    async def cur_execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        seen.statements.append(_text(query))
        return await cursor_execute(self, query, *args, **kwargs)

    async def cur_executemany(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        seen.statements.append("executemany: " + _text(query))
        return await cursor_executemany(self, query, *args, **kwargs)

    @contextlib.asynccontextmanager
    async def in_transaction(self: Any, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        seen.statements.append("BEGIN")
        try:
            async with transaction(self, *args, **kwargs) as tx:
                yield tx
        finally:
            seen.statements.append("COMMIT/ROLLBACK")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(psycopg.AsyncCursor, "execute", cur_execute)
        patch.setattr(psycopg.AsyncCursor, "executemany", cur_executemany)
        patch.setattr(psycopg.AsyncConnection, "transaction", in_transaction)
        yield seen
