"""The hot path's tenant lookup sees every rotation and uninstall at once (L4, L5, W1)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from adapters.sqlite.loop_connection import LoopConnection
from adapters.sqlite.tenant_lookup import LoopTenantLookup
from adapters.sqlite.tenants import SqliteTenantStore
from adapters.wiring import open_database
from core.model.tenant import Installation
from tests.support.builders import a_settings


def an_installation(secret: str) -> Installation:
    return Installation(client_key="site", shared_secret=secret,
                        base_url="https://acme.atlassian.net", display_url=None,
                        installed_at=datetime(2026, 1, 1, tzinfo=UTC))


async def test_L4_a_rotation_by_another_connection_is_seen_by_the_next_lookup(
    tmp_path: Path,
) -> None:
    writer = open_database(a_settings(tmp_path))  # "another process"
    reader_db = open_database(a_settings(tmp_path))
    loop_connection = LoopConnection(reader_db.path)
    lookup = LoopTenantLookup(loop_connection, reader_db.box)
    store = SqliteTenantStore(writer)
    try:
        await store.upsert_installed(an_installation("first-secret-" * 4))
        first = await lookup.by_client_key("site")
        again = await lookup.by_client_key("site")  # served from the row cache
        assert first is not None and again == first
        await store.upsert_installed(an_installation("second-secret-" * 4))
        rotated = await lookup.by_client_key("site")
        assert rotated is not None and rotated.shared_secret == "second-secret-" * 4
        await store.mark_uninstalled("site")
        gone = await lookup.by_client_key("site")
        assert gone is not None and not gone.is_installed and gone.shared_secret is None
        assert await lookup.by_client_key("nobody") is None
    finally:
        loop_connection.close()
        reader_db.close()
        writer.close()
