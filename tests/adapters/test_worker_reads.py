"""The worker's reads run in place on the event loop's SQLite connection (issue #15; W5, W6):
they never wait for the storage thread, which under load costs a GIL hand-off each way.

Shown by what still answers while the storage thread is held busy: the worker's stores
(`LoopDatabase`) and the sync store's plan and watermark reads; the same stores over the
storage thread (`Database`) wait."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.config import load_settings
from adapters.sqlite.database import Database
from adapters.sqlite.loop_connection import LoopConnection
from adapters.sqlite.loop_writes import LoopDatabase
from adapters.sqlite.sync_store import SqliteSyncStore
from adapters.sqlite.tenants import SqliteTenantStore
from adapters.wiring import open_database, sqlite_admin_stores
from core.model.bindings import Binding
from core.model.sync import Kind, WatermarkKey
from core.model.tenant import Installation
from tests.support.builders import TEST_FERNET_KEY


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = open_database(load_settings({"SENTRY_JIRA_DATABASE": str(tmp_path / "db.sqlite"),
                                      "SENTRY_JIRA_SECRET_KEY": TEST_FERNET_KEY}))
    yield db
    db.close()


async def _arrange(database: Database) -> int:
    tenant = await SqliteTenantStore(database).upsert_installed(Installation(
        client_key="reads-site", shared_secret="reads-secret-0123456789-abcdefghijklmnop",
        base_url="https://reads.atlassian.net", display_url=None,
        installed_at=datetime.now(UTC)))
    binding = Binding(tenant_id=tenant.id, org="acme", sentry_url="https://sentry.example.com",
                      sentry_token="sntrys_reads_token_0123456789")
    await sqlite_admin_stores(database).bindings.change(tenant.id, "acme", lambda _: binding)
    return tenant.id


def _hold_storage_thread(database: Database) -> threading.Event:
    """Occupy the storage thread until the returned event is set."""
    release, holding = threading.Event(), threading.Event()

    def hold(_: object) -> None:
        holding.set()
        release.wait(10)

    threading.Thread(target=database.read_sync, args=(hold,), daemon=True).start()
    assert holding.wait(5)
    return release


async def test_W5_the_worker_reads_its_tenant_and_bindings_while_the_storage_thread_is_busy(
    database: Database,
) -> None:
    tenant_id = await _arrange(database)
    loop_connection = LoopConnection(database.path)
    worker_db = LoopDatabase(database, loop_connection)
    release = _hold_storage_thread(database)
    try:
        tenant = await asyncio.wait_for(SqliteTenantStore(worker_db).get(tenant_id), 2)
        bindings = await asyncio.wait_for(
            sqlite_admin_stores(worker_db).bindings.of_tenant(tenant_id), 2)
        sync = SqliteSyncStore(database, loop_connection)
        key = WatermarkKey(tenant_id, "10001", "acme", Kind.STATUS)
        assert await asyncio.wait_for(sync.watermarks([key]), 2) == {}
        assert await asyncio.wait_for(sync.plan_of(12345), 2) is None
        # The same store over the storage thread waits for it.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(SqliteTenantStore(database).get(tenant_id), 0.3)
    finally:
        release.set()
        loop_connection.close()
    assert tenant is not None and tenant.shared_secret == "reads-secret-0123456789-abcdefghijklmnop"
    assert [b.sentry_token for b in bindings] == ["sntrys_reads_token_0123456789"]
