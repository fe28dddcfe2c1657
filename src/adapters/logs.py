"""SPEC §3 logs: the one logging setup of `serve`, `worker` and the CLI.

One line per meaningful event. `event(...)` names the event and its fields; the formatter
writes `ts level event message key=value …` (text) or one JSON object a line (json:
`ts`, `level`, `event`, `message`, then the fields). Lines from libraries (uvicorn) get
their logger's name as the event.

Nothing here knows a secret: callers pass identifiers (tenant ids, client keys, reasons
the core wrote), never a token, a shared secret or a request. Lines about refused
unauthenticated calls go through `RefusalLog`, a token bucket per event kind, so that a
flood of forgeries writes a bounded number of lines (the rest are counted, and the count
rides on the next line that gets through).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from adapters.config import Settings

LEVELS = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
}
FORMATS = ("text", "json")
MAX_FIELD_CHARS = 300  # a field is an identifier or a reason, never a body

log = logging.getLogger("sentry_jira")


def event(
    logger: logging.Logger, level: int, name: str, message: str, **fields: Any
) -> None:
    """One event line: `name` is the stable event kind, `fields` its data (no secrets)."""
    if logger.isEnabledFor(level):
        logger.log(level, message, extra={"event": name, "fields": fields})


def _plain(value: Any) -> Any:
    """A field value as logged: short, and a string unless it is a number, bool or None."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_FIELD_CHARS else text[:MAX_FIELD_CHARS] + "…"


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parts(record: logging.LogRecord) -> tuple[str, str, dict[str, Any]]:
    name = getattr(record, "event", None) or record.name
    fields = getattr(record, "fields", None) or {}
    message = record.getMessage()
    return str(name), message, {key: _plain(value) for key, value in fields.items()}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: `ts`, `level`, `event`, `message`, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        name, message, fields = _parts(record)
        line: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "event": name,
            "message": message,
        }
        for key, value in fields.items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=True, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """`ts LEVEL event message key=value …`, every line one line (values quoted if needed)."""

    def format(self, record: logging.LogRecord) -> str:
        name, message, fields = _parts(record)
        words = [_timestamp(record), record.levelname, name, _one_line(message)]
        words += [f"{key}={_text_value(value)}" for key, value in fields.items()]
        text = " ".join(words)
        if record.exc_info:
            text += " exception=" + json.dumps(self.formatException(record.exc_info))
        return text


def _one_line(text: str) -> str:
    return text if text.isprintable() else json.dumps(text)[1:-1]


def _text_value(value: Any) -> str:
    if value is None:
        return "-"
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if text == "" or not text.isprintable() or any(c in text for c in ' "='):
        return json.dumps(text)
    return text


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when a line is written (click's runner swaps it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


_handler: logging.Handler | None = None


def configure_logging(*, fmt: str = "text", level: str = "INFO",
                      stream: TextIO | None = None) -> None:
    """Install the one handler on the root logger (idempotent: a second call replaces it)."""
    global _handler
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    for existing in list(root.handlers):  # a library's or an earlier basicConfig's
        root.removeHandler(existing)
    _handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    _handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(_handler)
    root.setLevel(LEVELS[level.upper()])
    # httpx logs every outbound URL at INFO: search text and ids would reach the log.
    for noisy in ("httpx", "httpcore", "hpack"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True


# -- refused unauthenticated calls: rate-limited ---------------------------------------------


class TokenBucket:
    """`burst` lines at once, then `rate` lines a second."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.last = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class RefusalLog:
    """Warning lines about refused calls, a token bucket per event kind (§3: a flood of
    forgeries cannot fill the disk). What is not written is counted: the next line of the
    same kind carries `suppressed=<n>`."""

    def __init__(self, logger: logging.Logger, *, rate: float = 1.0, burst: int = 20,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def refused(self, name: str, message: str, **fields: Any) -> bool:
        """Log the refusal if the kind's bucket allows; True when a line was written."""
        with self._lock:
            bucket = self._buckets.get(name)
            if bucket is None:
                bucket = self._buckets[name] = TokenBucket(self.rate, self.burst, self.clock)
            if not bucket.take():
                self._suppressed[name] = self._suppressed.get(name, 0) + 1
                return False
            suppressed = self._suppressed.pop(name, 0)
        if suppressed:
            fields["suppressed"] = suppressed
        event(self.logger, logging.WARNING, name, message, **fields)
        return True


refusals = RefusalLog(logging.getLogger("sentry_jira.refused"))


# -- the lines every process writes -----------------------------------------------------------


def package_version() -> str:
    """The installed distribution's version (`sentry-jira --version`, the start-up line)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sentry-jira")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def start_logging(settings: Settings, *, stream: TextIO | None = None) -> None:
    """Configure from SENTRY_JIRA_LOG_FORMAT / _LOG_LEVEL, then warn about unknown variables."""
    configure_logging(fmt=settings.log_format, level=settings.log_level, stream=stream)
    for name, closest in settings.unknown_variables:
        hint = f" (did you mean {closest}?)" if closest else ""
        event(log, logging.WARNING, "config_warning",
              f"unknown variable {name} is ignored{hint}", variable=name, closest=closest)


def database_label(settings: Settings) -> tuple[str, str]:
    """(kind, location) of the database, without credentials (a SQLite path has none; a
    PostgreSQL URL is shown without its password, §9)."""
    return settings.engine, settings.database_location


def log_startup(settings: Settings, *, process: str, transports: tuple[str, ...]) -> None:
    """§3: the start-up line, and a warning when Jira could not reach the base URL."""
    from urllib.parse import urlsplit

    kind, location = database_label(settings)
    event(
        log, logging.INFO, "startup", f"sentry-jira {package_version()} {process} starting",
        version=package_version(),
        process=process,
        base_url=settings.app.base_url,
        listen=f"{settings.host}:{settings.port}" if process == "serve" else None,
        database=kind,
        database_location=location,
        admin_api="on" if settings.admin_tokens else "off",
        metrics=settings.metrics_route if process == "serve" else None,
        worker="on" if settings.run_worker or process == "worker" else "off",
        transports=",".join(transports),
    )
    host = (urlsplit(settings.app.base_url).hostname or "").lower()
    if host in ("localhost", "::1") or host.endswith(".localhost") or host.startswith("127."):
        event(log, logging.WARNING, "config_warning",
              "SENTRY_JIRA_BASE_URL is a loopback address Jira cannot reach: set it to the "
              "public https URL of this service (a tunnel works for a trial)",
              variable="SENTRY_JIRA_BASE_URL")
