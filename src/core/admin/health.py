"""administer (§A): /health — the queue, the dead letters, and whether a sync worker runs.

Storage that does not answer is `Unavailable` (503). With the sync state present, a process
is healthy only while a worker runs: its own, or another one on the same database (the
caller says which, by `workers_running`). Without it (a process built of fakes) no worker is
asked about.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from core.model.errors import Unavailable
from ports.clock import Clock
from ports.inbox import Inbox
from ports.journal import Journal


class NoWorker(Unavailable):
    """/health: the database answers but no sync worker is running (503, with the figures)."""

    def __init__(self, figures: dict[str, Any]) -> None:
        super().__init__("no sync worker is running", retry_after=5)
        self.figures = figures


async def check_health(
    *,
    inbox: Inbox,
    journal: Journal | None,
    clock: Clock,
    workers_running: Callable[[datetime], Awaitable[bool]],
    ping: Callable[[], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """The figures of /health; raises Unavailable when storage does not answer, NoWorker
    (with the figures) when the sync state is there but no worker runs."""
    if ping is not None:
        await ping()
    now = clock.now()
    stats = await inbox.stats(now)
    dead_letters, running = 0, True
    if journal is not None:
        dead_letters = await journal.dead_letter_count()
        running = await workers_running(now)
    figures = {
        "queue_depth": stats.pending,
        "oldest_pending_seconds": stats.oldest_pending_seconds,
        "dead_letters": dead_letters,
    }
    if not running:
        raise NoWorker(figures)
    return figures
