"""The PostgreSQL foundation (SPEC §9, W10, W1): migrations under an advisory lock, the key
check, secrets at rest, the per-request tenant lookup, and outages as `Unavailable`."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import psycopg
import pytest

from adapters.config import ConfigError
from adapters.crypto import SecretBox
from adapters.postgres.database import PgDatabase
from adapters.postgres.inbox import PgInbox
from adapters.postgres.schema import STEPS, migrate
from adapters.postgres.tenants import PgTenantLookup, PgTenantStore
from adapters.wiring import open_postgres, pg_admin_stores
from core.model.bindings import Binding, ResolutionStrategy
from core.model.errors import Unavailable
from core.model.tenant import Installation
from ports.inbox import NewDelivery
from tests.support.builders import TEST_FERNET_KEY, a_settings
from tests.support.postgres import PostgresCluster

OTHER_KEY = "b" * 43 + "="
SECRET = "a-shared-secret-never-stored-in-clear-0123456789abcdef"
SENTRY_TOKEN = "sntrys_a-sentry-token-never-stored-in-clear-0123456789"


def an_installation(secret: str = SECRET, client_key: str = "site") -> Installation:
    return Installation(client_key=client_key, shared_secret=secret,
                        base_url="https://acme.atlassian.net", display_url=None,
                        installed_at=datetime(2026, 1, 1, tzinfo=UTC))


def test_s9_processes_starting_together_apply_each_migration_once(
    postgres_cluster: PostgresCluster,
) -> None:
    url = postgres_cluster.database(migrated=False)
    applied: list[list[str]] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        applied.append(migrate(url))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    names = [name for batch in applied for name in batch]
    assert sorted(names) == sorted(step.name for step in STEPS)  # each once, all of them
    with psycopg.connect(url) as conn:
        count = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
    assert count == (len(STEPS),)
    assert migrate(url) == []  # a later start applies nothing


def test_s9_a_wrong_secret_key_stops_start_up(postgres_url: str) -> None:
    open_postgres(a_settings(database=postgres_url))  # marks the database with the test key
    with pytest.raises(ConfigError) as caught:
        open_postgres(a_settings(database=postgres_url, secret_key=OTHER_KEY))
    assert caught.value.variable == "SENTRY_JIRA_SECRET_KEY"


def test_s9_an_unreachable_server_is_one_line_naming_the_database_without_password(
    postgres_cluster: PostgresCluster,
) -> None:
    url = (postgres_cluster.url("nowhere").replace(str(postgres_cluster.socket_dir).replace(
        "/", "%2F"), "%2Fnonexistent-socket-dir") + "&password=hunter2-secret")
    with pytest.raises(ConfigError) as caught:
        open_postgres(a_settings(database=url))
    assert caught.value.variable == "SENTRY_JIRA_DATABASE"
    assert "hunter2" not in str(caught.value)
    assert "nonexistent-socket-dir" in str(caught.value)


async def test_s9_secrets_are_encrypted_at_rest(postgres_url: str) -> None:
    database = open_postgres(a_settings(database=postgres_url))
    try:
        tenant = await PgTenantStore(database).upsert_installed(an_installation())
        await pg_admin_stores(database).bindings.change(tenant.id, "acme", lambda _: Binding(
            tenant_id=tenant.id, org="acme", sentry_url="https://sentry.example.com",
            sentry_token=SENTRY_TOKEN, sync_status=True, sync_assignee=True,
            resolution_strategy=ResolutionStrategy.RESOLVE, skip_archived=False,
            status_map={}))
    finally:
        await database.aclose()
    with psycopg.connect(postgres_url) as conn:
        dump = repr(conn.execute("SELECT * FROM tenants").fetchall()) + repr(
            conn.execute("SELECT * FROM bindings").fetchall())
    assert "site" in dump  # the rows are there...
    assert SECRET not in dump and SENTRY_TOKEN not in dump  # ...their secrets are not


async def test_W1_s9_a_rotation_by_another_process_is_seen_by_the_next_lookup(
    postgres_url: str,
) -> None:
    writer_db = open_postgres(a_settings(database=postgres_url))  # "another machine"
    reader_db = PgDatabase(postgres_url, SecretBox((TEST_FERNET_KEY,)))
    lookup = PgTenantLookup(reader_db, reader_db.box)
    writer = PgTenantStore(writer_db)
    try:
        await writer.upsert_installed(an_installation("first-secret-" * 4))
        first = await lookup.by_client_key("site")
        assert first is not None and first.shared_secret == "first-secret-" * 4
        await writer.upsert_installed(an_installation("second-secret-" * 4))
        rotated = await lookup.by_client_key("site")
        assert rotated is not None and rotated.shared_secret == "second-secret-" * 4
        assert rotated.secret_version == first.secret_version + 1
        await writer.mark_uninstalled("site")
        gone = await lookup.by_id(first.id)
        assert gone is not None and not gone.is_installed and gone.shared_secret is None
        assert await lookup.by_client_key("nobody") is None
    finally:
        await reader_db.aclose()
        await writer_db.aclose()


def a_delivery(delivery_id: str = "d-1") -> NewDelivery:
    return NewDelivery(tenant_id=1, delivery_id=delivery_id, issue_id="20417",
                       issue_key="APP-1", body=b"{}", received_at=datetime(2026, 1, 1, tzinfo=UTC))


async def test_W10_no_pooled_connection_within_1s_is_unavailable_and_nothing_written(
    postgres_url: str,
) -> None:
    database = PgDatabase(postgres_url, SecretBox((TEST_FERNET_KEY,)), pool_size=1)
    inbox = PgInbox(database)
    try:
        async with database.connection():  # the only connection, held
            started = asyncio.get_running_loop().time()
            with pytest.raises(Unavailable) as caught:
                await inbox.record(a_delivery())
            waited = asyncio.get_running_loop().time() - started
        assert caught.value.retry_after == 1
        assert 0.9 <= waited < 3
        assert (await inbox.stats(datetime(2026, 1, 1, tzinfo=UTC))).pending == 0
        assert await inbox.record(a_delivery()) is True  # free again: accepted
    finally:
        await database.aclose()


async def test_W10_a_stopped_server_is_unavailable_then_recovers_without_a_restart(
    postgres_cluster: PostgresCluster, postgres_url: str,
) -> None:
    database = PgDatabase(postgres_url, SecretBox((TEST_FERNET_KEY,)), pool_size=2)
    inbox = PgInbox(database)
    try:
        assert await inbox.record(a_delivery("before")) is True
        postgres_cluster.pg_ctl_stop("fast")
        try:
            for _ in range(2):  # a pooled connection that died, then no connection at all
                with pytest.raises(Unavailable) as caught:
                    await inbox.record(a_delivery("during"))
                assert caught.value.retry_after == 1
        finally:
            postgres_cluster.pg_ctl_start()
        for _ in range(50):  # the pool reconnects in the background
            try:
                assert await inbox.record(a_delivery("after")) is True
                break
            except Unavailable:
                await asyncio.sleep(0.1)
        else:
            pytest.fail("the pool did not recover after the server came back")
        stats = await inbox.stats(datetime(2026, 1, 1, tzinfo=UTC))
        assert stats.pending == 2  # "before" and "after"; "during" was never half-written
    finally:
        await database.aclose()


async def test_W3_s9_concurrent_deliveries_share_a_statement_and_each_is_accepted_once(
    postgres_url: str,
) -> None:
    database = PgDatabase(postgres_url, SecretBox((TEST_FERNET_KEY,)), pool_size=2)
    inbox = PgInbox(database)
    try:
        ids = [f"d-{n % 30}" for n in range(60)]  # every delivery sent twice, concurrently
        accepted = await asyncio.gather(*(inbox.record(a_delivery(i)) for i in ids))
        assert sum(accepted) == 30
        assert {i for i, new in zip(ids, accepted, strict=True) if new} == set(ids)
        async with database.connection() as conn:
            cursor = await conn.execute(
                "SELECT count(*) FROM sync_journal WHERE outcome = 'duplicate'")
            assert await cursor.fetchone() == (30,)  # W9: one entry per duplicated delivery
    finally:
        await database.aclose()


async def test_W6_s9_workers_on_separate_pools_claim_one_delivery_per_issue_in_order(
    postgres_url: str,
) -> None:
    """FOR UPDATE SKIP LOCKED + the per-issue lock: four workers, each with its own pool (as
    on four machines), never hold two deliveries of one issue at once, and process each
    issue's deliveries once, in the order they were recorded."""
    from datetime import timedelta

    from adapters.postgres.sync_store import PgSyncStore

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    setup = PgDatabase(postgres_url, SecretBox((TEST_FERNET_KEY,)))
    inbox = PgInbox(setup)
    for n in range(60):
        await inbox.record(NewDelivery(
            tenant_id=1, delivery_id=f"d-{n:02d}", issue_id=f"issue-{n % 5}", issue_key="APP-1",
            body=b"{}", received_at=t0 + timedelta(milliseconds=n)))
    await setup.aclose()

    holding: dict[str, str] = {}  # issue → the worker holding one of its deliveries
    processed: dict[str, list[str]] = {}
    overlaps: list[str] = []

    async def worker(name: str) -> None:
        database = PgDatabase(postgres_url, SecretBox((TEST_FERNET_KEY,)), pool_size=2)
        mine, sync = PgInbox(database), PgSyncStore(database)
        try:
            idle = 0
            while idle < 3:
                claimed = await mine.claim(name, now=t0 + timedelta(seconds=1),
                                           lease_seconds=60, limit=3)
                idle = 0 if claimed else idle + 1
                for delivery in claimed:
                    if delivery.issue_id in holding:
                        overlaps.append(delivery.issue_id)
                    holding[delivery.issue_id] = name
                await asyncio.sleep(0.001)  # "processing", while the others claim
                for delivery in claimed:
                    processed.setdefault(delivery.issue_id, []).append(delivery.delivery_id)
                    del holding[delivery.issue_id]
                    assert await sync.settle(delivery.id, name) is None  # done
        finally:
            await database.aclose()

    await asyncio.gather(*(worker(f"w{n}") for n in range(4)))
    assert overlaps == []
    for issue in range(5):
        expected = [f"d-{n:02d}" for n in range(60) if n % 5 == issue]
        assert processed[f"issue-{issue}"] == expected


async def test_W10_a_delivery_waiting_on_a_lock_is_unavailable_not_hung(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another process holding the deliveries table (a long migration): the insert gives up
    after the lock timeout with 503 material, and has written nothing."""
    from adapters.postgres import database as pg_module

    monkeypatch.setattr(pg_module, "LOCK_TIMEOUT_MS", 300)
    database = PgDatabase(postgres_url, SecretBox((TEST_FERNET_KEY,)), pool_size=2)
    inbox = PgInbox(database)
    try:
        with psycopg.connect(postgres_url) as blocker:
            blocker.execute("LOCK TABLE deliveries IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(Unavailable) as caught:
                await asyncio.wait_for(inbox.record(a_delivery("blocked")), timeout=10)
            blocker.rollback()
        assert caught.value.retry_after == 1
        assert (await inbox.stats(datetime(2026, 1, 1, tzinfo=UTC))).pending == 0
        assert await inbox.record(a_delivery("blocked")) is True
    finally:
        await database.aclose()


async def pooled_settings(database: PgDatabase) -> tuple[str, str, str]:
    async with database.connection() as conn:
        cursor = await conn.execute(
            "SELECT current_setting('statement_timeout'), current_setting('lock_timeout'), "
            "current_setting('default_transaction_read_only')")
        row = await cursor.fetchone()
    assert row is not None
    return row[0], row[1], row[2]


async def test_s9_pooled_connections_have_a_bounded_statement_and_lock_timeout(
    postgres_url: str,
) -> None:
    """#16: every pooled connection (serve, worker, CLI) runs with statement_timeout 10 s and
    lock_timeout 5 s; migrations use their own connection, without a statement limit."""
    database = PgDatabase(postgres_url, SecretBox((TEST_FERNET_KEY,)))
    try:
        assert await pooled_settings(database) == ("10s", "5s", "off")
    finally:
        await database.aclose()
    with psycopg.connect(postgres_url) as conn:  # what migrate() and db copy connect with
        assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)


async def test_s9_an_operators_own_statement_timeout_is_kept(postgres_url: str) -> None:
    """`options=-c statement_timeout=…` in the URL (or ALTER ROLE … SET) wins over ours."""
    url = postgres_url + "&options=-c%20statement_timeout%3D1234"
    database = PgDatabase(url, SecretBox((TEST_FERNET_KEY,)))
    try:
        assert (await pooled_settings(database))[0] == "1234ms"
    finally:
        await database.aclose()


async def test_W10_a_statement_running_past_the_timeout_is_unavailable_and_the_pool_recovers(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A statement that runs (pg_sleep: no lock involved) past statement_timeout is cancelled
    as `Unavailable(retry_after=1)`; the connection goes back to the pool and answers."""
    from adapters.postgres import database as pg_module

    monkeypatch.setattr(pg_module, "STATEMENT_TIMEOUT_MS", 200)
    database = PgDatabase(postgres_url, SecretBox((TEST_FERNET_KEY,)), pool_size=1)
    try:
        with pytest.raises(Unavailable) as caught:
            await asyncio.wait_for(database.fetchone("SELECT pg_sleep(5)"), timeout=3)
        assert caught.value.retry_after == 1
        assert await database.fetchone("SELECT 1") == (1,)
    finally:
        await database.aclose()


async def test_s9_the_retention_prune_is_not_cut_short_by_the_pools_statement_timeout(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The prune deletes a backlog in one transaction under its own, longer limit: a delete
    slower than the pool's statement timeout still completes."""
    from adapters.postgres import database as pg_module
    from adapters.postgres.sync_store import PgSyncStore

    monkeypatch.setattr(pg_module, "STATEMENT_TIMEOUT_MS", 200)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("INSERT INTO sync_journal (tenant_id, at, delivery_id, issue_key, kind, "
                     "outcome, detail) VALUES (1, 1.0, 'd', 'APP-1', 'status', 'applied', '')")
        conn.execute("CREATE FUNCTION sj_slow() RETURNS trigger LANGUAGE plpgsql AS "
                      "$$ BEGIN PERFORM pg_sleep(0.5); RETURN NULL; END $$")
        conn.execute("CREATE TRIGGER sj_slow AFTER DELETE ON sync_journal "
                     "FOR EACH STATEMENT EXECUTE FUNCTION sj_slow()")
    database = PgDatabase(postgres_url, SecretBox((TEST_FERNET_KEY,)))
    try:
        with pytest.raises(Unavailable):  # the pool's limit does apply to other statements
            await database.fetchone("SELECT pg_sleep(0.5)")
        assert await PgSyncStore(database).prune(datetime(2026, 1, 1, tzinfo=UTC)) == 1
        assert await pooled_settings(database) == ("200ms", "5s", "off")  # SET LOCAL ended
    finally:
        await database.aclose()
