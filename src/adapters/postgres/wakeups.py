"""Worker wake-ups on PostgreSQL (§9): `LISTEN` on the channel `PgInbox.record` notifies.

A delivery recorded by any process on any machine wakes every listening worker at once, so
workers need no busy polling: their own safety poll can be slow (SAFETY_POLL_SECONDS). The
listening connection is not one of the pool's; when it breaks (server restart) it is made
again, and a wake-up is given for what may have been recorded meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg

from adapters.postgres.inbox import CHANNEL

SAFETY_POLL_SECONDS = 5.0  # an idle worker's claim query, at most this often
RECONNECT_SECONDS = 1.0

log = logging.getLogger("sentry_jira.postgres")


async def listen_for_deliveries(conninfo: str, wake: Callable[[], None]) -> None:
    """Call `wake()` on every notification; runs until cancelled."""
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
            async with conn:
                await conn.execute(f"LISTEN {CHANNEL}".encode())
                wake()  # deliveries recorded while nobody listened
                async for _ in conn.notifies():
                    wake()
        except psycopg.OperationalError:
            log.warning("lost the PostgreSQL wake-up connection; listening again shortly")
        await asyncio.sleep(RECONNECT_SECONDS)
