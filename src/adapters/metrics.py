"""SPEC §3 `GET /metrics`: the process's counters in the Prometheus text format.

One `Metrics` per container (its own `CollectorRegistry`, never the global one: two apps in
one test process count apart). The exposition is prometheus-client's; nothing here writes
the text format by hand.

Hooks, each one call:
- `delivery(transport, answer, seconds)`: an issue-update route answered (the routes call it
  through `adapters.http.acknowledgement.counted`).
- `outbound_observer(target)`: the callable `adapters.outbound.calls.exchange` reports each
  call's status class or failure kind to.
- `CountingSyncStore`: wraps the worker's sync store and journal; every journal entry written
  counts once by kind and outcome.
- `refresh(...)`: the database-wide gauges (queue depth, oldest pending, dead letters), read
  at most every `GAUGE_SECONDS` by the /metrics route, whichever process or worker is asked.

Label values are bounded: transports, answers, targets, status classes, kinds and outcomes
are fixed sets. No tenant, site, org or issue is ever a label (§3: bounded cardinality, and
no tenant data in an unauthenticated-looking output).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from core.model.errors import ServiceError
from core.model.sync import Kind, Outcome, Watermark, WatermarkAdvance, WatermarkKey
from ports.clock import Clock
from ports.inbox import ClaimedDelivery, Inbox
from ports.journal import JOURNAL_DEFAULT_LIMIT, JOURNAL_MAX_LIMIT, DeadLetter, Journal
from ports.sync_store import (
    ActionState,
    Finish,
    JournalEntry,
    NewAction,
    StoredAction,
    SyncChange,
    SyncStore,
    apply_batch,
)

GAUGE_SECONDS: Final = 5.0  # database-wide gauges are read at most this often
# prometheus-client's content type without its charset (Litestar adds `charset=utf-8`).
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST.split("; charset=", 1)[0]
# Acknowledgement latency (time in the route, seconds): §7 wants most under a few ms.
ACK_BUCKETS: Final = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
TRANSPORTS: Final = ("connect", "webhook", "forge")
TARGETS: Final = ("jira", "sentry", "install_keys", "forge_keys")


class Acknowledgements(Collector):
    """Deliveries by transport and answer, and the acknowledgement latency histogram.

    The ack path is the service's hot path (§7): a request costs one dict update, one
    `bisect` and two list/float additions here — plain counts, no lock (only the event loop
    writes them) — and prometheus-client turns them into its metric families when scraped."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, str], int] = {}
        self._buckets: dict[str, list[int]] = {}  # per transport: one count per bound, +Inf
        self._sums: dict[str, float] = {}
        self._bounds = list(ACK_BUCKETS)

    def record(self, transport: str, answer: str, seconds: float) -> None:
        key = (transport, answer)
        answers = self._answers
        answers[key] = answers.get(key, 0) + 1
        buckets = self._buckets.get(transport)
        if buckets is None:
            buckets = self._buckets[transport] = [0] * (len(self._bounds) + 1)
            self._sums[transport] = 0.0
        buckets[bisect_left(self._bounds, seconds)] += 1
        self._sums[transport] += seconds

    def collect(self) -> Iterator[Metric]:
        deliveries = CounterMetricFamily(
            "sentry_jira_deliveries", "Issue-update deliveries answered, by transport and "
            "answer (accepted, duplicate, ignored, or the refusal's status code)",
            labels=["transport", "answer"])
        for (transport, answer), count in sorted(self._answers.copy().items()):
            deliveries.add_metric([transport, answer], count)
        yield deliveries
        latency = HistogramMetricFamily(
            "sentry_jira_ack_seconds", "Time the issue-update route took to answer, seconds",
            labels=["transport"])
        for transport, counts in sorted(self._buckets.copy().items()):
            cumulative, total = [], 0
            for bound, count in zip([*self._bounds, float("inf")], counts, strict=True):
                total += count
                cumulative.append(("+Inf" if bound == float("inf") else repr(bound),
                                   float(total)))
            latency.add_metric([transport], cumulative, self._sums[transport])
        yield latency


class Metrics:
    """The counters, histogram and gauges of one process."""

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._monotonic = monotonic
        self._acks = Acknowledgements()
        self.registry.register(self._acks)
        # The route hook (adapters/http/acknowledgement.py `counted`) calls this directly.
        self.delivery = self._acks.record
        self._outbound = Counter(
            "sentry_jira_outbound_calls", "Outbound HTTP calls by target and answer (a status "
            "class, or timeout, unreachable, unsendable, refused, too_large)",
            ["target", "status"], registry=self.registry)
        self._outcomes = Counter(
            "sentry_jira_sync_outcomes", "Journal entries written by this process's worker, "
            "by kind and outcome (W9)", ["kind", "outcome"], registry=self.registry)
        self._queue_depth = Gauge(
            "sentry_jira_queue_depth", "Deliveries waiting to be processed (whole database)",
            registry=self.registry)
        self._oldest_pending = Gauge(
            "sentry_jira_oldest_pending_seconds", "Age of the oldest waiting delivery, seconds "
            "(whole database; 0 when none waits)", registry=self.registry)
        self._dead_letters = Gauge(
            "sentry_jira_dead_letters", "Dead letters kept (whole database)",
            registry=self.registry)
        self._gauges_age = Gauge(
            "sentry_jira_gauges_age_seconds", "Age of the database-wide gauges' reading, "
            "seconds (they are read at most every 5 s; -1: never read)", registry=self.registry)
        self._gauges_age.set(-1)
        self._outcome_children: dict[tuple[Kind, Outcome], Any] = {}
        self._read_at: float | None = None

    # -- hooks -------------------------------------------------------------------------
    # delivery(transport, answer, seconds): an issue-update route answered (see __init__).

    def outbound_observer(self, target: str) -> Callable[[str], None]:
        """The callable `exchange(observe=...)` reports one call's result to."""
        counter = self._outbound
        children: dict[str, Any] = {}  # result → its labelled counter (labels() locks)

        def observe(result: str) -> None:
            child = children.get(result)
            if child is None:
                child = children[result] = counter.labels(target, result)
            child.inc()

        return observe

    def sync_outcomes(self, entries: Iterable[JournalEntry]) -> None:
        children = self._outcome_children
        for entry in entries:
            key = (entry.kind, entry.outcome)
            child = children.get(key)
            if child is None:
                child = children[key] = self._outcomes.labels(str(entry.kind),
                                                              str(entry.outcome))
            child.inc()

    async def refresh(self, *, inbox: Inbox, journal: Journal | None, clock: Clock) -> None:
        """Read the database-wide gauges unless read less than `GAUGE_SECONDS` ago. A
        database that does not answer leaves the last reading (its age shows it)."""
        now = self._monotonic()
        if self._read_at is None or now - self._read_at >= GAUGE_SECONDS:
            try:
                stats = await inbox.stats(clock.now())
                dead = await journal.dead_letter_count() if journal is not None else 0
            except ServiceError:
                pass
            else:
                self._queue_depth.set(stats.pending)
                self._oldest_pending.set(stats.oldest_pending_seconds or 0)
                self._dead_letters.set(dead)
                self._read_at = now
        if self._read_at is not None:
            self._gauges_age.set(round(now - self._read_at, 3))

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (prometheus-client's own writer)."""
        return generate_latest(self.registry)


class CountingSyncStore:
    """The worker's `SyncStore` and `Journal`, counting every journal entry that is written
    (W9 outcomes by kind). Engine-agnostic: it wraps whichever store the composition root
    built, and forwards every call unchanged."""

    def __init__(self, store: Any, metrics: Metrics) -> None:
        self._store = store
        self._metrics = metrics

    # SyncStore
    async def watermarks(self, keys: Iterable[WatermarkKey]) -> dict[WatermarkKey, Watermark]:
        result: dict[WatermarkKey, Watermark] = await self._store.watermarks(keys)
        return result

    async def plan_of(self, delivery_row: int) -> list[StoredAction] | None:
        result: list[StoredAction] | None = await self._store.plan_of(delivery_row)
        return result

    async def save_plan(self, delivery: ClaimedDelivery, *, actions: Sequence[NewAction],
                        entries: Sequence[JournalEntry], advances: Sequence[WatermarkAdvance],
                        at: datetime) -> list[StoredAction]:
        result: list[StoredAction] = await self._store.save_plan(
            delivery, actions=actions, entries=entries, advances=advances, at=at)
        # A worker that lost its lease and raced another writes nothing here but is counted
        # (rare; no extra read on every plan to tell).
        self._metrics.sync_outcomes(entries)
        return result

    async def finish(self, action_id: int, *, state: ActionState, entry: JournalEntry,
                     advance: WatermarkAdvance | None = None) -> bool:
        done: bool = await self._store.finish(action_id, state=state, entry=entry,
                                              advance=advance)
        if done:
            self._metrics.sync_outcomes((entry,))
        return done

    async def apply_batch(self, changes: Sequence[SyncChange]) -> list[bool | datetime | None]:
        """The wrapped store's one-transaction batch (#15), counting each finish that took."""
        results = await apply_batch(self._store, changes)
        done = [change.entry for change, result in zip(changes, results, strict=True)
                if isinstance(change, Finish) and result]
        if done:
            self._metrics.sync_outcomes(done)
        return results

    async def postpone(self, action_id: int, *, entry: JournalEntry, error: str,
                       not_before: datetime, record: Mapping[str, Any] | None = None) -> bool:
        done: bool = await self._store.postpone(action_id, entry=entry, error=error,
                                                not_before=not_before, record=record)
        if done:
            self._metrics.sync_outcomes((entry,))
        return done

    async def bury(self, action_id: int, *, entry: JournalEntry, error: str, at: datetime,
                   record: Mapping[str, Any] | None = None) -> bool:
        done: bool = await self._store.bury(action_id, entry=entry, error=error, at=at,
                                            record=record)
        if done:
            self._metrics.sync_outcomes((entry,))
        return done

    async def bury_delivery(self, delivery: ClaimedDelivery, owner: str, *,
                            entry: JournalEntry, error: str, at: datetime) -> bool:
        done: bool = await self._store.bury_delivery(delivery, owner, entry=entry, error=error,
                                                     at=at)
        if done:
            self._metrics.sync_outcomes((entry,))
        return done

    async def settle(self, delivery_row: int, owner: str) -> datetime | None:
        result: datetime | None = await self._store.settle(delivery_row, owner)
        return result

    # Journal
    async def record(self, entries: Sequence[JournalEntry]) -> None:
        await self._store.record(entries)
        self._metrics.sync_outcomes(entries)

    async def journal(self, tenant_id: int, *, issue_key: str | None = None,
                      limit: int = JOURNAL_DEFAULT_LIMIT) -> list[JournalEntry]:
        result: list[JournalEntry] = await self._store.journal(tenant_id, issue_key=issue_key,
                                                               limit=limit)
        return result

    async def dead_letters(
        self, *, limit: int = JOURNAL_MAX_LIMIT, tenant_id: int | None = None
    ) -> list[DeadLetter]:
        result: list[DeadLetter] = await self._store.dead_letters(limit=limit, tenant_id=tenant_id)
        return result

    async def dead_letter_count(self) -> int:
        result: int = await self._store.dead_letter_count()
        return result

    async def retry_dead_letter(
        self, id: int, *, now: datetime, tenant_id: int | None = None
    ) -> bool:
        result: bool = await self._store.retry_dead_letter(id, now=now, tenant_id=tenant_id)
        return result


def counting_store(store: SyncStore, metrics: Metrics) -> CountingSyncStore:
    """The composition root's one call (typed: the wrapped store is a SyncStore)."""
    return CountingSyncStore(store, metrics)
