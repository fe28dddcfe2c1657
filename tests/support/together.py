"""Requests sent side by side, for the tests that show one request cannot spoil the others
batched with it (§9: on PostgreSQL concurrent requests share one statement)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def side_by_side(call: Callable[[str], T], names: Iterable[str]) -> dict[str, T]:
    """`call(name)` for every name, each in its own thread, all started before any is
    joined; the results by name."""
    results: dict[str, T] = {}
    lock = threading.Lock()

    def run(name: str) -> None:
        result = call(name)
        with lock:
            results[name] = result

    threads = [threading.Thread(target=run, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
