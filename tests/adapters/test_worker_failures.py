"""W9 / issue #11 item 6: a failure nobody foresaw counts toward SENTRY_JIRA_MAX_ATTEMPTS and
ends as a dead letter with journal entries — through the real worker, never an endless retry.

Two ways to fail: a Sentry port raising an exception no adapter maps (a bug), and a loopback
fake Jira whose answer is nested too deeply for the JSON decoder (invalid JSON, not a
RecursionError escaping the Jira adapter)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from litestar.testing import AsyncTestClient

from adapters.clock import SystemClock
from adapters.http.app import create_app
from adapters.memory.sentry import MemorySentryApi
from adapters.wiring import bootstrap
from adapters.worker import Worker
from core.model.bindings import Binding, Link
from core.model.tenant import Installation
from tests.adapters.test_worker import eventually
from tests.support.builders import a_settings
from tests.support.fake_jira import FakeJira, Reply
from tests.support.sync_world import SyncWorld, issue_updated
from tests.support.webhooks import signed_delivery

MAX_ATTEMPTS = 3
SECRET = "worker-failure-tests-shared-secret-0123456789"


class BrokenSentry:
    """The memory Sentry, except that every PUT raises what no adapter would: a bug."""

    def __init__(self, inner: MemorySentryApi) -> None:
        self.inner = inner
        self.puts = 0

    async def update_issue(self, binding: Binding, issue_id: str,
                           payload: Mapping[str, Any]) -> None:
        self.puts += 1
        raise RuntimeError("bug quoting sntrys_acme_token_0123456789")

    async def get_issue_status(self, binding: Binding, issue_id: str) -> str:
        return await self.inner.get_issue_status(binding, issue_id)

    async def members_by_email(self, binding: Binding, email: str) -> Any:
        return await self.inner.members_by_email(binding, email)


async def test_W9_an_unexpected_exception_ends_as_a_dead_letter_after_max_attempts() -> None:
    world = SyncWorld(clock=SystemClock(), max_attempts=MAX_ATTEMPTS, retry_base_seconds=0.01)
    broken = BrokenSentry(world.sentry)
    world.ports = attrs.evolve(world.ports, sentry=broken)
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"APP-123": ["1"]})
    worker = Worker(world.ports, world.settings, upkeep=world.sync, idle_poll_max=0.05)
    await world.deliver(tenant, issue_updated(), delivery_id="d-bug")
    await worker.start()
    try:
        async def buried() -> bool:
            return bool(await world.sync.dead_letters())

        await eventually(buried, timeout=20.0)
        await asyncio.sleep(0.3)  # many idle polls: nothing is claimed again
        assert broken.puts == MAX_ATTEMPTS
        assert (await world.inbox.stats(world.clock.now())).pending == 0
    finally:
        await worker.stop()
    outcomes = [(kind, outcome) for kind, outcome, _, _ in await world.journal(tenant)]
    assert outcomes == [("delivery", "retrying")] * (MAX_ATTEMPTS - 1) + [("delivery", "dead")]
    details = [detail for _, _, _, detail in await world.journal(tenant)]
    assert all("RuntimeError" in d for d in details)
    assert not any("sntrys_" in d for d in details)  # the exception's text is never journalled
    [dead] = await world.sync.dead_letters()
    assert dead.kind.value == "delivery" and dead.issue_key == "APP-123"


# -- a loopback fake Jira answering JSON nested too deeply, the real SQLite worker ------------


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira(a_settings().app.app_key) as server:
        yield server


async def test_W9_a_too_deep_jira_answer_ends_as_a_dead_letter_after_max_attempts(
    tmp_path: Path, jira: FakeJira, caplog: pytest.LogCaptureFixture
) -> None:
    settings = a_settings(tmp_path, jira_hosts="http://127.0.0.1:*", max_attempts=str(MAX_ATTEMPTS),
                          retry_base_seconds="0.01", http_timeout_seconds="2")
    site = jira.add_site("jira-deep", SECRET)
    deep = 100_000
    site.reply("statuses", Reply(body=b"[" * deep + b"]" * deep))
    container = bootstrap(settings)
    assert container.journal is not None
    try:
        tenant = await container.tenants.upsert_installed(Installation(
            client_key="jira-deep", shared_secret=SECRET, base_url=site.base_url,
            display_url=None, installed_at=datetime.now(UTC)))
        # Sentry on a closed loopback port: the failure comes before any Sentry call.
        binding = Binding(tenant_id=tenant.id, org="acme", sentry_url="http://127.0.0.1:9",
                          sentry_token="sntrys_acme_token_0123456789")
        await container.admin.bindings.change(tenant.id, "acme", lambda _: binding)
        await container.admin.links.replace(Link(tenant.id, "acme", "APP-123", ("1",)))
        async with AsyncTestClient(app=create_app(container)) as client:  # starts the worker
            headers, raw = signed_delivery("jira-deep", SECRET, issue_updated(),
                                           delivery_id="d-deep")
            response = await client.post("/extensions/jira/issue-updated/", content=raw,
                                         headers=headers)
            assert response.status_code == 202, response.text
            sync = container.journal

            async def buried() -> bool:
                return bool(await sync.dead_letters())

            await eventually(buried, timeout=30.0)
            await asyncio.sleep(0.3)
            assert len(jira.requests_to("statuses")) == MAX_ATTEMPTS
            entries = list(reversed(await sync.journal(tenant.id)))
            assert [(e.kind.value, e.outcome.value) for e in entries] == (
                [("delivery", "retrying")] * (MAX_ATTEMPTS - 1) + [("delivery", "dead")])
            assert "Jira answered with invalid JSON" in entries[-1].detail
            # SPEC §3: the dead letter is one log line, with its fields and no secret.
            lines = [r for r in caplog.records if getattr(r, "event", None) == "dead_letter"]
            assert len(lines) == 1
            fields = lines[0].fields  # type: ignore[attr-defined]
            assert (fields["tenant_id"], fields["issue_key"], fields["kind"]) == (
                tenant.id, "APP-123", "delivery")
            assert "invalid JSON" in fields["reason"]
            assert SECRET not in caplog.text and "sntrys_acme" not in caplog.text
    finally:
        container.close()
