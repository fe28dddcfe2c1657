"""W3 + W9 through HTTP on real SQLite (issue #11 item 9): a duplicate delivery is answered
200 `duplicate` and leaves exactly one `duplicate` journal entry, however often it comes."""

from __future__ import annotations

from typing import Any

from tests.http.test_issue_updated import CLIENT, SECRET, deliveries, post, service  # noqa: F401
from tests.support.webhooks import signed_delivery


async def test_W9_a_duplicate_delivery_leaves_exactly_one_duplicate_journal_entry(
    service: Any,  # noqa: F811
) -> None:
    container, client = service
    assert container.journal is not None
    headers, body = signed_delivery(CLIENT, SECRET, delivery_id="d-dup")
    assert (await post(client, headers, body)).status_code == 202
    for _ in range(5):
        again = await post(client, headers, body)
        assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    rows = deliveries(container)
    assert len(rows) == 1
    entries = await container.journal.journal(rows[0]["tenant_id"], limit=500)
    duplicates = [e for e in entries if e.outcome.value == "duplicate"]  # the worker's aside
    assert [(e.kind.value, e.delivery_id, e.issue_key, e.org) for e in duplicates] == [
        ("delivery", "d-dup", "APP-123", None)]
