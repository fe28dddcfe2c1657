"""adapters/metrics.py (#18; SPEC §3 metrics): outbound calls to a real loopback Sentry counted
by target and status class, the worker's journal entries by kind and outcome, and the
database-wide gauges read at most every 5 s."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.memory.clock import FixedClock
from adapters.memory.inbox import MemoryInbox
from adapters.memory.sync_store import MemorySyncStore
from adapters.metrics import GAUGE_SECONDS, CountingSyncStore, Metrics
from adapters.outbound.sentry import HttpSentryApi, sentry_http_client
from core.model.bindings import Binding
from core.model.errors import SentryError
from core.model.host_patterns import parse_host_patterns
from core.model.sync import Kind, Outcome
from ports.inbox import NewDelivery
from ports.sync_store import ActionState, Finish, JournalEntry, Settle, SyncChange
from tests.support.fake_sentry import Answer, FakeSentry
from tests.support.process import free_port

LOOPBACK = parse_host_patterns("http://127.0.0.1:*")
TOKEN = "sntrys_metrics-token-that-must-never-leak-0123456789"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return 0.0


async def test_3_outbound_calls_count_by_target_and_status_class() -> None:
    metrics = Metrics()
    with FakeSentry() as server:
        server.add_org("acme", TOKEN)
        server.add_issue("acme", "1")
        server.script("GET", FakeSentry.issue_path("acme", "2"), Answer(503, {"detail": "x"}))
        server.script("GET", FakeSentry.issue_path("acme", "3"), Answer(hang=2.0))
        client = sentry_http_client(LOOPBACK)
        api = HttpSentryApi(client, 0.5, LOOPBACK, observe=metrics.outbound_observer("sentry"))
        binding = Binding(tenant_id=1, org="acme", sentry_url=server.url, sentry_token=TOKEN)
        closed = Binding(tenant_id=1, org="acme", sentry_url=f"http://127.0.0.1:{free_port()}",
                         sentry_token=TOKEN)
        try:
            assert await api.get_issue_status(binding, "1") == "unresolved"
            for issue, where in (("2", binding), ("3", binding), ("1", closed)):
                with pytest.raises(SentryError):
                    await api.get_issue_status(where, issue)
            with pytest.raises(SentryError):  # a 404 of an unknown issue: a 4xx
                await api.get_issue_status(binding, "404")
        finally:
            await client.aclose()
    counts = {status: sample(metrics, "sentry_jira_outbound_calls_total", target="sentry",
                             status=status)
              for status in ("2xx", "4xx", "5xx", "timeout", "unreachable")}
    assert counts == {"2xx": 1, "4xx": 1, "5xx": 1, "timeout": 1, "unreachable": 1}
    assert TOKEN not in metrics.exposition().decode()


async def test_3_a_host_refused_before_sending_is_not_an_outbound_call() -> None:
    """§8.3: nothing is sent to a disallowed Sentry URL, so no call is counted either."""
    metrics = Metrics()
    client = sentry_http_client(LOOPBACK)
    api = HttpSentryApi(client, 0.5, LOOPBACK, observe=metrics.outbound_observer("sentry"))
    binding = Binding(tenant_id=1, org="acme", sentry_url="https://sentry.invalid",
                      sentry_token=TOKEN)
    try:
        with pytest.raises(SentryError):
            await api.get_issue_status(binding, "1")
    finally:
        await client.aclose()
    assert "sentry_jira_outbound_calls_total{" not in metrics.exposition().decode()


def entry(kind: Kind, outcome: Outcome) -> JournalEntry:
    return JournalEntry(at=NOW, tenant_id=7, delivery_id="d", issue_key="SECRET-PROJECT-1",
                        org="private-org", kind=kind, outcome=outcome, detail="x")


async def test_3_journal_entries_count_by_kind_and_outcome() -> None:
    metrics = Metrics()
    store = CountingSyncStore(MemorySyncStore(), metrics)
    await store.record([entry(Kind.STATUS, Outcome.RETRYING), entry(Kind.STATUS,
                                                                    Outcome.RETRYING)])
    await store.record([entry(Kind.ASSIGNEE, Outcome.DEAD)])
    assert sample(metrics, "sentry_jira_sync_outcomes_total", kind="status",
                  outcome="retrying") == 2
    assert sample(metrics, "sentry_jira_sync_outcomes_total", kind="assignee",
                  outcome="dead") == 1
    text = metrics.exposition().decode()
    assert "private-org" not in text and "SECRET-PROJECT" not in text


class BatchRecordingStore(MemorySyncStore):
    """A store whose batches the test can see: the wrapper must hand the whole batch on."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[SyncChange]] = []

    async def apply_batch(self, changes: Sequence[SyncChange]) -> list[bool | datetime | None]:
        self.batches.append(list(changes))
        return [True if isinstance(change, Finish) else None for change in changes]


async def test_3_15_the_counting_wrapper_keeps_the_one_transaction_batch() -> None:
    """#15's apply_batch (one transaction for the last outcome and the settle) must survive
    the metrics wrapper the worker's store wears, and the finish it carries is counted."""
    metrics = Metrics()
    inner = BatchRecordingStore()
    store = CountingSyncStore(inner, metrics)
    changes: list[SyncChange] = [
        Finish(action_id=1, state=ActionState.DONE, entry=entry(Kind.STATUS, Outcome.APPLIED)),
        Settle(delivery_row=1, owner="w"),
    ]
    assert await store.apply_batch(changes) == [True, None]
    assert inner.batches == [changes]
    assert sample(metrics, "sentry_jira_sync_outcomes_total", kind="status",
                  outcome="applied") == 1


async def test_3_database_gauges_are_read_at_most_every_5_seconds() -> None:
    now = [100.0]
    metrics = Metrics(monotonic=lambda: now[0])
    inbox = MemoryInbox()
    clock = FixedClock(NOW)

    async def receive(n: int) -> None:
        await inbox.record(NewDelivery(tenant_id=1, delivery_id=f"d-{n}", issue_id=str(n),
                                       issue_key=f"K-{n}", body=b"{}",
                                       received_at=NOW - timedelta(seconds=30)))

    assert sample(metrics, "sentry_jira_gauges_age_seconds") == -1  # never read yet
    await receive(1)
    await metrics.refresh(inbox=inbox, journal=None, clock=clock)
    assert sample(metrics, "sentry_jira_queue_depth") == 1
    assert sample(metrics, "sentry_jira_oldest_pending_seconds") == 30
    await receive(2)
    now[0] += GAUGE_SECONDS - 0.5
    await metrics.refresh(inbox=inbox, journal=None, clock=clock)
    assert sample(metrics, "sentry_jira_queue_depth") == 1  # cached
    assert sample(metrics, "sentry_jira_gauges_age_seconds") == GAUGE_SECONDS - 0.5
    now[0] += 0.5
    await metrics.refresh(inbox=inbox, journal=None, clock=clock)
    assert sample(metrics, "sentry_jira_queue_depth") == 2
    assert sample(metrics, "sentry_jira_gauges_age_seconds") == 0
