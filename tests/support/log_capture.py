"""Capture the lines of the one logging setup (adapters/logs.py) in a test, then restore."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import attrs

from adapters import logs


@attrs.define
class CapturedLog:
    stream: io.StringIO

    @property
    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def events(self) -> list[dict[str, Any]]:
        """Every line parsed as JSON (configured with fmt="json")."""
        return [json.loads(line) for line in self.lines]

    def named(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.events() if line["event"] == name]


@contextlib.contextmanager
def captured_log(fmt: str = "json", level: str = "INFO") -> Iterator[CapturedLog]:
    root = logging.getLogger()
    handlers, root_level = list(root.handlers), root.level
    stream = io.StringIO()
    logs.configure_logging(fmt=fmt, level=level, stream=stream)
    try:
        yield CapturedLog(stream)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(root_level)
        logs._handler = None


class SteppingClock:
    """1 ms a reading (or `step`): a limiter's window spans a fixed number of readings, so a
    test of rate-limited lines does not depend on the machine's speed."""

    def __init__(self, step: float = 0.001) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def fresh_refusal_log() -> logs.RefusalLog:
    """A new refusal-line limiter (burst 20, then one a second) on a SteppingClock."""
    return logs.RefusalLog(logging.getLogger("sentry_jira.refused"), rate=1.0, burst=20,
                           clock=SteppingClock())
