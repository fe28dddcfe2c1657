"""docs/operations.md's metrics table is the exposition (§3, #18): every metric the registry
exposes is a row, every row is a metric, and the label values it lists are the values the
code can write (found in review: the table named a `rekey` kind the code never writes, and
left out `key`, `duplicate`, `ignored`, `unresolvable` and the `other`, `error`, `cancelled`
call results)."""

from __future__ import annotations

import re

from adapters.metrics import TARGETS, TRANSPORTS, Metrics
from core.model.sync import Kind, Outcome
from tests.support.paths import REPO

OPERATIONS = REPO / "docs" / "operations.md"
# What adapters/outbound/calls.py `status_class` and `failure_kind` return.
CALL_RESULTS = ("1xx", "2xx", "3xx", "4xx", "5xx", "other", "timeout", "unreachable",
                "unsendable", "refused", "too_large", "error", "cancelled")


def table() -> dict[str, str]:
    """metric name → its row, from the table under `### Metrics`."""
    text = OPERATIONS.read_text(encoding="utf-8")
    section = text.split("### Metrics", 1)[1].split("\n### ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        found = re.match(r"\| `(sentry_jira_[a-z_]+)`", line)
        if found:
            rows[found.group(1)] = line
    return rows


def listed(row: str) -> set[str]:
    return set(re.findall(r"`([^`]+)`", row))


def test_3_every_metric_is_documented_and_every_documented_metric_exists() -> None:
    exposed = {family.name + ("_total" if family.type == "counter" else "")
               for family in Metrics().registry.collect()}
    assert set(table()) == exposed


def test_3_the_documented_label_values_are_the_ones_the_code_writes() -> None:
    rows = table()
    outcomes = listed(rows["sentry_jira_sync_outcomes_total"])
    assert {k.value for k in Kind} <= outcomes, "a journal kind is missing"
    assert {o.value for o in Outcome} <= outcomes, "an outcome is missing"
    assert "rekey" not in outcomes
    calls = listed(rows["sentry_jira_outbound_calls_total"])
    assert set(TARGETS) <= calls
    assert set(CALL_RESULTS) <= calls
    assert set(TRANSPORTS) <= listed(rows["sentry_jira_deliveries_total"])
