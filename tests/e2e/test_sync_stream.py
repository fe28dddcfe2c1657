"""Correctness under a stream (issue #15, SPEC §7 end to end; W5, W6, W9): a real `serve` with its
worker, a fake Sentry on loopback recording every PUT in arrival order, and several hundred
signed deliveries over many issues sent concurrently. Not timed: it asserts what happened."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from core.describe import ISSUE_UPDATED_PATH
from tests.support.process import running_server
from tests.support.sync_e2e import (
    TimedFakeSentry,
    bind,
    install,
    journal,
    status_body,
    sync_env,
    wait_for,
)
from tests.support.webhooks import signed_delivery

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("each_engine")]  # §9: both engines

SECRET = "e2e-stream-shared-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
TOKEN = "sntrys_stream-e2e-token-never-shown-0123456789"
ISSUES = 24
PER_ISSUE = 16  # 384 deliveries
OPEN, DONE = "3", "10101"


def the_stream() -> list[tuple[str, int, bool, str]]:
    """(delivery id, issue number, into done?, fields.updated): round-robin over the issues,
    each issue moved into "done" and out again in turn, every delivery newer than the last."""
    base = datetime(2025, 11, 28, 9, 0, tzinfo=UTC)
    stream = []
    for n in range(ISSUES * PER_ISSUE):
        updated = base + timedelta(milliseconds=n)
        stamp = updated.strftime("%Y-%m-%dT%H:%M:%S.") + f"{updated.microsecond // 1000:03d}+0000"
        issue, turn = n % ISSUES + 1, n // ISSUES
        stream.append((f"stream-{n}", issue, turn % 2 == 0, stamp))
    return stream


async def send_all(url: str, stream: list[tuple[str, int, bool, str]], lanes: int = 16) -> None:
    """Concurrent senders; one issue's deliveries still leave in the stream's order (a lane
    per issue), as one Jira site sends the updates of one issue."""
    by_lane: dict[int, list[tuple[str, int, bool, str]]] = defaultdict(list)
    for item in stream:
        by_lane[item[1] % lanes].append(item)

    async def lane(items: list[tuple[str, int, bool, str]]) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            for delivery_id, issue, into_done, stamp in items:
                frm, to = (OPEN, DONE) if into_done else (DONE, OPEN)
                body = status_body(str(100 + issue), f"APP-{issue}", frm=frm, to=to,
                                   updated=stamp)
                headers, raw = signed_delivery("stream-site", SECRET, body,
                                               delivery_id=delivery_id)
                response = await client.post(url + ISSUE_UPDATED_PATH, content=raw,
                                             headers=headers)
                assert response.status_code == 202, response.text

    await asyncio.gather(*(lane(items) for items in by_lane.values()))


def test_W6_a_stream_over_many_issues_syncs_every_delivery_once_in_order_per_issue(
    tmp_path: Path,
) -> None:
    stream = the_stream()
    with TimedFakeSentry() as sentry:
        sentry.add_org("acme", TOKEN)
        for issue in range(1, ISSUES + 1):
            sentry.add_issue("acme", str(issue))
        env = sync_env(tmp_path)
        tenant = install(env, "stream-site", SECRET, "http://127.0.0.1:9")
        with running_server(env, log=tmp_path / "serve.log") as (url, _):
            bind(url, tenant, "acme", sentry.url, TOKEN,
                 {f"APP-{issue}": [str(issue)] for issue in range(1, ISSUES + 1)},
                 status_map={"10000": {"resolve": [DONE], "unresolve": [OPEN]}})
            asyncio.run(send_all(url, stream))

            def all_written() -> bool:
                return sum(1 for _, r in sentry.arrivals if r.method == "PUT") >= len(stream)

            wait_for(all_written, timeout=120, what="every delivery written to Sentry")
            entries = []
            for issue in range(1, ISSUES + 1):
                entries += journal(url, tenant, f"APP-{issue}")

        # Exactly once, in order per issue: each issue's PUTs, in arrival order, are the
        # stream's moves of that issue, none missing, none repeated, none swapped.
        for issue in range(1, ISSUES + 1):
            expected = [{"status": "resolved" if into_done else "unresolved"}
                        for _, n, into_done, _ in stream if n == issue]
            got = [r.json for _, r in sentry.puts_to("acme", str(issue))]
            assert got == expected, f"issue {issue}"
        assert len([r for _, r in sentry.arrivals if r.method == "PUT"]) == len(stream)

    # The journal says the same: one `applied` status entry per delivery, nothing else.
    applied = [e["delivery"] for e in entries if e["outcome"] == "applied"]
    assert sorted(applied) == sorted(d for d, *_ in stream)
    assert {e["outcome"] for e in entries} == {"applied"}
