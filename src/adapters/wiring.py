"""The composition root: the only place that builds adapters (STYLE "One composition root")."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
import httpx

from adapters.clock import SystemClock
from adapters.config import ConfigError, Settings
from adapters.crypto import SecretBox, read_or_create_key_file
from adapters.logs import event
from adapters.memory.admin import (
    MemoryAccountMappingStore,
    MemoryAdminData,
    MemoryBindingStore,
    MemoryLinkStore,
    MemorySearchTokenStore,
)
from adapters.memory.inbox import MemoryInbox
from adapters.metrics import Metrics, counting_store
from adapters.outbound.forge_jwks import HttpForgeJwks, forge_jwks_client
from adapters.outbound.install_keys import HttpInstallKeys
from adapters.outbound.jira import HttpJiraApi, jira_http_client
from adapters.outbound.jira_status_cache import CachingJiraApi, StatusCache
from adapters.outbound.sentry import HttpSentryApi, sentry_http_client
from adapters.outbound.sentry_issue_cache import CachedSentryIssues
from adapters.sqlite.admin import (
    SqliteAccountMappingStore,
    SqliteBindingStore,
    SqliteLinkStore,
    SqliteSearchTokenStore,
)
from adapters.sqlite.database import (
    RESTART_FRAMES,
    Database,
    KeyMismatchError,
    holds_encrypted_data,
)
from adapters.sqlite.forge import SqliteForgeSites
from adapters.sqlite.inbox import SqliteInbox
from adapters.sqlite.lifecycle import SqliteLifecycleStore
from adapters.sqlite.loop_connection import LoopConnection
from adapters.sqlite.loop_writes import LoopDatabase
from adapters.sqlite.schema import ALL_MIGRATIONS
from adapters.sqlite.sync_store import SqliteSyncStore
from adapters.sqlite.tenant_lookup import LoopTenantLookup
from adapters.sqlite.tenants import SqliteTenantStore
from adapters.worker import Worker, WorkerUpkeep, heartbeat_horizon
from core.issue_update.process import SyncPorts
from core.model.errors import ServiceError, Unavailable
from core.model.host_patterns import HostRefused, check_sentry_url
from ports.admin import AccountMappingStore, BindingStore, LinkStore, SearchTokenStore
from ports.clock import Clock
from ports.forge import ForgeKeys, ForgeSites
from ports.inbox import Inbox
from ports.install_keys import InstallKeys
from ports.jira import JiraApi
from ports.journal import Journal
from ports.lifecycle import LifecycleStore
from ports.sentry import SentryApi
from ports.tenants import TenantLookup, TenantStore

if TYPE_CHECKING:
    from adapters.postgres.database import PgDatabase
    from adapters.postgres.tenants import RememberedTenants


@attrs.frozen
class AdminStores:
    bindings: BindingStore
    links: LinkStore
    accounts: AccountMappingStore
    search_tokens: SearchTokenStore


def memory_admin_stores() -> AdminStores:
    """Fakes sharing one data set, so that unbinding cascades as it does in SQLite."""
    data = MemoryAdminData()
    return AdminStores(
        bindings=MemoryBindingStore(data),
        links=MemoryLinkStore(data),
        accounts=MemoryAccountMappingStore(data),
        search_tokens=MemorySearchTokenStore(data),
    )


def sqlite_admin_stores(database: Database) -> AdminStores:
    return AdminStores(
        bindings=SqliteBindingStore(database),
        links=SqliteLinkStore(database),
        accounts=SqliteAccountMappingStore(database),
        search_tokens=SqliteSearchTokenStore(database),
    )


def pg_admin_stores(database: PgDatabase) -> AdminStores:
    from adapters.postgres.admin import (
        PgAccountMappingStore,
        PgBindingStore,
        PgLinkStore,
        PgSearchTokenStore,
    )

    return AdminStores(
        bindings=PgBindingStore(database),
        links=PgLinkStore(database),
        accounts=PgAccountMappingStore(database),
        search_tokens=PgSearchTokenStore(database),
    )


log = logging.getLogger("sentry_jira")
CHECKPOINT_INTERVAL_SECONDS = 1.0
# After a checkpoint that found a busy WAL (RESTART_FRAMES or more): the next one comes sooner,
# so each copies less and the WAL stays well under its size limit (no truncation on the loop).
BUSY_CHECKPOINT_INTERVAL_SECONDS = 0.25


@attrs.define
class Container:
    """Every port the use cases need, built once; tests build it with fakes."""

    settings: Settings
    tenants: TenantStore
    clock: Clock
    database: Database | None = None
    # §9: the PostgreSQL database instead (its pool is closed by `shutdown` / `close_pools`).
    pg_database: PgDatabase | None = None
    inbox: Inbox = attrs.field(factory=MemoryInbox)
    loop_connection: LoopConnection | None = None
    # W1 on the hot path: the event-loop connection's lookup (None: use `tenants`).
    tenant_lookup: TenantLookup | None = None
    # §9: on PostgreSQL the Connect route's one-round-trip lookup
    # (adapters/http/connect/remembered.py); None elsewhere.
    remembered_tenants: RememberedTenants | None = None
    # §A stores; bootstrap puts the SQLite ones here, tests get in-memory fakes.
    admin: AdminStores = attrs.field(factory=memory_admin_stores)
    # L1–L6: signed lifecycle callbacks (None: the lifecycle routes answer 503).
    install_keys: InstallKeys | None = None
    lifecycle: LifecycleStore | None = None
    install_keys_client: httpx.AsyncClient | None = None  # closed at shutdown
    jira: JiraApi | None = None
    jira_http: httpx.AsyncClient | None = None  # the shared client behind `jira`, if any
    sentry: SentryApi | None = None
    # §10 glance: Sentry issue reads cached ≤ 60 s (None: the glance reads `sentry` directly).
    glance_sentry: SentryApi | None = None
    # The one outbound HTTP client (connection pool) of the process; closed on shutdown.
    http_client: httpx.AsyncClient | None = None
    # W5–W9 and §A: the journal and dead letters, the worker and its upkeep (heartbeats).
    # `worker` is started by startup when `settings.run_worker`; without a `journal` (a
    # container of fakes) /health does not ask about workers.
    journal: Journal | None = None
    worker: Worker | None = None
    upkeep: WorkerUpkeep | None = None
    # §3 /metrics: this process's counters (its own registry: two apps in a test count apart).
    metrics: Metrics = attrs.field(factory=Metrics)
    # §8.2 Forge Remote: the FIT keys and the Forge sites (None: the Forge routes answer 503
    # when SENTRY_JIRA_FORGE_APP_ID is set; 404 while it is unset).
    forge_keys: ForgeKeys | None = None
    forge_sites: ForgeSites | None = None
    forge_keys_client: httpx.AsyncClient | None = None  # closed at shutdown

    _background: list[asyncio.Task[None]] = attrs.field(factory=list, init=False)

    async def startup(self) -> None:
        """Lifespan start: long-lived clients and workers start here."""
        if self.database is not None:
            self._background.append(asyncio.create_task(self._checkpoints(self.database)))
        if self.worker is not None and self.settings.run_worker:
            self.start_wakeups()
        await self.warn_about_disallowed_sentry_urls()
        if self.worker is not None and self.settings.run_worker:
            await self.worker.start()
            event(log, logging.INFO, "worker_start", "sync worker started",
                  owner=self.worker.owner)

    def start_wakeups(self) -> None:
        """§9: on PostgreSQL the worker wakes on NOTIFY of a new delivery from any process."""
        if self.pg_database is not None and self.worker is not None:
            from adapters.postgres.wakeups import listen_for_deliveries

            self._background.append(asyncio.create_task(
                listen_for_deliveries(self.pg_database.conninfo, self.worker.wake)))

    async def warn_about_disallowed_sentry_urls(self) -> list[tuple[int, str]]:
        """§3 logs, §8.3: one warning per binding whose Sentry URL the current
        SENTRY_JIRA_SENTRY_HOSTS no longer allow (its calls will be refused)."""
        refused: list[tuple[int, str]] = []
        patterns = self.settings.app.sentry_hosts
        try:
            orgs = await self.admin.bindings.orgs_by_tenant()
            for tenant_id in sorted(orgs):
                for binding in await self.admin.bindings.of_tenant(tenant_id):
                    try:
                        check_sentry_url(binding.sentry_url, patterns)
                    except HostRefused:
                        refused.append((tenant_id, binding.org))
        except ServiceError as err:  # the database is busy: not a reason to refuse to start
            log.warning("could not check the bindings' Sentry URLs: %s", err.detail)
        for tenant_id, org in refused:
            log.warning(
                "configuration: the Sentry URL of org %s (tenant %s) is not allowed by "
                "SENTRY_JIRA_SENTRY_HOSTS; calls to it will be refused (dead letters)",
                org,
                tenant_id,
            )
        return refused

    async def _checkpoints(self, database: Database) -> None:
        # The hot path's connection never checkpoints (its commits must not fsync on the
        # event loop); this keeps the WAL short from the storage thread instead.
        interval = CHECKPOINT_INTERVAL_SECONDS
        while True:
            await asyncio.sleep(interval)
            try:
                _, frames, _ = await database.checkpoint()
            except Exception:  # a busy or failing checkpoint is retried next time
                log.warning("WAL checkpoint failed; retrying later")
                frames = 0
            interval = (BUSY_CHECKPOINT_INTERVAL_SECONDS if frames >= RESTART_FRAMES
                        else CHECKPOINT_INTERVAL_SECONDS)

    def wake_worker(self) -> None:
        """The ack path recorded a delivery: let this process's worker claim it now."""
        if self.worker is not None:
            self.worker.wake()

    async def workers_running(self, now: datetime) -> bool:
        """Does a sync worker run: this process's own, or (none here) any that beats on the
        database?"""
        if self.worker is not None and self.settings.run_worker:
            return self.worker.running
        if self.upkeep is None:
            return False
        return await self.upkeep.live_workers(heartbeat_horizon(now)) > 0

    async def shutdown(self) -> None:
        """Lifespan end: close what startup opened."""
        if self.worker is not None:
            was_running = self.worker.running
            await self.worker.stop()  # first: it still uses the clients and the database
            if was_running:
                event(log, logging.INFO, "worker_stop",
                      "sync worker stopped (its claims released)", owner=self.worker.owner)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        if self.loop_connection is not None:
            self.loop_connection.close()
        if self.install_keys_client is not None:
            await self.install_keys_client.aclose()
        if self.forge_keys_client is not None:
            await self.forge_keys_client.aclose()
        if self.jira_http is not None:
            await self.jira_http.aclose()
        if self.http_client is not None:
            await self.http_client.aclose()
        await self.close_pools()

    async def close_pools(self) -> None:
        """Close the PostgreSQL pool of the running loop (the CLI: after each command)."""
        if self.pg_database is not None:
            await self.pg_database.aclose()

    async def ping(self) -> None:
        """Raise Unavailable when the database does not answer (health)."""
        if self.database is not None:
            await self.database.ping()
        if self.pg_database is not None:
            await self.pg_database.ping()

    @property
    def has_database(self) -> bool:
        return self.database is not None or self.pg_database is not None

    def close(self) -> None:
        if self.database is not None:
            self.database.close()


class SchemaNotReady(Exception):
    """A read-only command found no sentry-jira schema, or an older one, at the configured
    database: it migrates nothing (docs/operations.md, "Read-only commands never migrate")."""


def check_schema_for_reading(location: str, pending: list[str] | None) -> None:
    if pending is None:
        raise SchemaNotReady(f"{location} holds no sentry-jira schema; `sentry-jira serve` "
                             "or `sentry-jira worker` creates it (read-only commands never do)")
    if pending:
        raise SchemaNotReady(f"{location}: the sentry-jira schema is older than this version "
                             f"({len(pending)} migrations pending); start `sentry-jira serve` "
                             "or `sentry-jira worker` of this version to migrate it")


def open_database(settings: Settings, *, read_only: bool = False) -> Database:
    """Open (and migrate) the database with the configured or generated secret key.

    `read_only` (a read-only command): the file must already hold this version's schema
    (else SchemaNotReady); nothing is migrated and the key check is not written."""
    if read_only:
        from adapters.sqlite.schema import pending_steps

        check_schema_for_reading(settings.database_location, pending_steps(settings.database))
    keys = settings.secret_keys
    if not keys:
        has_data = holds_encrypted_data(settings.database)
        key = read_or_create_key_file(settings.key_file, may_create=not has_data)
        if key is None:
            raise ConfigError(
                "SENTRY_JIRA_SECRET_KEY",
                f"unset and no key file at {settings.key_file}, but the database holds "
                "encrypted data: restore the key, never generate a new one over old data",
            )
        keys = (key,)
    settings.database.parent.mkdir(parents=True, exist_ok=True)
    database = Database(settings.database, SecretBox(keys),
                        synchronous=settings.sqlite_synchronous)
    try:
        if not read_only:
            database.migrate(ALL_MIGRATIONS)
        database.check_key(mark=not read_only)
    except KeyMismatchError:
        database.close()
        raise ConfigError(
            "SENTRY_JIRA_SECRET_KEY", "cannot decrypt the data in the database with this key"
        ) from None
    except BaseException:
        database.close()
        raise
    return database


def open_postgres(settings: Settings, *, read_only: bool = False) -> PgDatabase:
    """§9: the PostgreSQL database of `settings` (migrated under the advisory lock, the key
    checked). The pool opens on first use, on the loop that uses it.

    `read_only` (a read-only command): the database must already hold this version's schema
    (else SchemaNotReady); nothing is migrated or marked, every transaction is READ ONLY."""
    import psycopg

    from adapters.postgres.database import KeyMismatchError as PgKeyMismatch
    from adapters.postgres.database import PgDatabase

    assert settings.postgres_url is not None
    if not settings.secret_keys:  # load_settings refuses this; a hand-made Settings may not
        raise ConfigError("SENTRY_JIRA_SECRET_KEY", "required with a PostgreSQL database")
    database = PgDatabase(settings.postgres_url, SecretBox(settings.secret_keys),
                          pool_size=settings.database_pool_size, read_only=read_only)
    try:
        if read_only:
            from adapters.postgres.schema import pending_steps

            try:
                pending = pending_steps(settings.postgres_url)
            except psycopg.OperationalError:
                raise Unavailable("the database is unavailable", retry_after=5) from None
            check_schema_for_reading(settings.database_location, pending)
        else:
            database.migrate()
        database.check_key()
    except PgKeyMismatch:
        raise ConfigError(
            "SENTRY_JIRA_SECRET_KEY", "cannot decrypt the data in the database with this key"
        ) from None
    except Unavailable:
        raise ConfigError("SENTRY_JIRA_DATABASE",
                          f"cannot connect to {settings.database_location}") from None
    return database


def bootstrap(settings: Settings, *, read_only: bool = False) -> Container:
    """Build the production container from settings (`read_only`: for a read-only command,
    on a database that already holds this version's schema; nothing is migrated)."""
    if settings.postgres_url is not None:
        return bootstrap_postgres(settings, read_only=read_only)
    database = open_database(settings, read_only=read_only)
    metrics = Metrics()
    loop_connection = LoopConnection(database.path, synchronous=settings.sqlite_synchronous)
    tenants = SqliteTenantStore(database)
    clock = SystemClock()
    inbox = SqliteInbox(database, loop_connection)
    admin = sqlite_admin_stores(database)
    sync = SqliteSyncStore(database, loop_connection)
    forge_sites = SqliteForgeSites(database, loop_connection)
    out = outbound(settings, clock, metrics, forge_sites)
    jira, sentry = out.jira, out.sentry
    counted_sync = counting_store(sync, metrics)  # §3: W9 outcomes by kind
    # The worker's stores read in place on the loop's connection (adapters/sqlite/loop_writes.py).
    worker_database = LoopDatabase(database, loop_connection)
    worker_admin = sqlite_admin_stores(worker_database)
    worker = Worker(
        SyncPorts(inbox=inbox, sync=counted_sync, journal=counted_sync,
                  tenants=SqliteTenantStore(worker_database), bindings=worker_admin.bindings,
                  links=worker_admin.links, accounts=worker_admin.accounts,
                  sentry=sentry, jira=jira, clock=clock),
        settings.app,
        upkeep=sync,
        lease_seconds=settings.worker_lease_seconds,
    )
    return Container(
        settings=settings,
        tenants=tenants,
        clock=clock,
        database=database,
        inbox=inbox,
        loop_connection=loop_connection,
        tenant_lookup=LoopTenantLookup(loop_connection, database.box),
        admin=admin,
        lifecycle=SqliteLifecycleStore(database, tenants),
        journal=sync,
        worker=worker,
        upkeep=sync,
        metrics=metrics,
        forge_sites=forge_sites,
        **out.container_fields(),
    )


def bootstrap_postgres(settings: Settings, *, read_only: bool = False) -> Container:
    """§9: the production container on PostgreSQL. The same ports as SQLite's; the worker
    wakes on LISTEN/NOTIFY (Container.startup) and otherwise polls only slowly."""
    from adapters.postgres.forge import PgForgeSites
    from adapters.postgres.inbox import PgInbox
    from adapters.postgres.lifecycle import PgLifecycleStore
    from adapters.postgres.sync_store import PgSyncStore
    from adapters.postgres.tenants import PgTenantLookup, PgTenantStore, RememberedTenants
    from adapters.postgres.wakeups import SAFETY_POLL_SECONDS

    database = open_postgres(settings, read_only=read_only)
    metrics = Metrics()
    tenants = PgTenantStore(database)
    lookup = PgTenantLookup(database, database.box)
    clock = SystemClock()
    inbox = PgInbox(database)
    admin = pg_admin_stores(database)
    sync = PgSyncStore(database)
    forge_sites = PgForgeSites(database)  # §8.2
    out = outbound(settings, clock, metrics, forge_sites)
    jira, sentry = out.jira, out.sentry
    counted_sync = counting_store(sync, metrics)  # §3: W9 outcomes by kind
    worker = Worker(
        SyncPorts(inbox=inbox, sync=counted_sync, journal=counted_sync, tenants=tenants,
                  bindings=admin.bindings, links=admin.links, accounts=admin.accounts,
                  sentry=sentry, jira=jira, clock=clock),
        settings.app,
        upkeep=sync,
        lease_seconds=settings.worker_lease_seconds,
        idle_poll_max=SAFETY_POLL_SECONDS,
    )
    return Container(
        settings=settings,
        tenants=tenants,
        clock=clock,
        pg_database=database,
        inbox=inbox,
        tenant_lookup=lookup,
        remembered_tenants=RememberedTenants(lookup),
        admin=admin,
        lifecycle=PgLifecycleStore(database, tenants),
        journal=sync,
        worker=worker,
        upkeep=sync,
        metrics=metrics,
        forge_sites=forge_sites,
        **out.container_fields(),
    )



@attrs.frozen
class Outbound:
    """The outbound side of a production container: the same for every storage engine."""

    keys_client: httpx.AsyncClient
    jira_http: httpx.AsyncClient
    http_client: httpx.AsyncClient
    forge_client: httpx.AsyncClient
    install_keys: HttpInstallKeys
    jira: CachingJiraApi
    sentry: HttpSentryApi
    glance_sentry: CachedSentryIssues
    forge_keys: HttpForgeJwks

    def container_fields(self) -> dict[str, Any]:
        """The `Container` fields these clients fill, alike for every storage engine."""
        return {
            "install_keys": self.install_keys, "install_keys_client": self.keys_client,
            "jira": self.jira, "jira_http": self.jira_http, "sentry": self.sentry,
            "glance_sentry": self.glance_sentry, "http_client": self.http_client,
            "forge_keys": self.forge_keys, "forge_keys_client": self.forge_client,
        }


def outbound(settings: Settings, clock: SystemClock, metrics: Metrics,
             forge_sites: ForgeSites) -> Outbound:
    """Every outbound client, each counted by /metrics (§3) under its target."""
    keys_client = install_keys_client(settings)
    jira_http = jira_http_client(settings)
    http_client = sentry_http_client(settings.app.sentry_hosts)
    forge_client = forge_jwks_client(settings.install_keys_timeout_seconds)
    # W5: the status cache wraps the Jira client (any transport's credential).
    jira = CachingJiraApi(
        HttpJiraApi(jira_http, settings, clock=clock, observe=metrics.outbound_observer("jira"),
                    forge_sites=forge_sites),
        StatusCache(clock))
    sentry = HttpSentryApi(http_client, settings.http_timeout_seconds, settings.app.sentry_hosts,
                           observe=metrics.outbound_observer("sentry"))
    return Outbound(
        keys_client=keys_client,
        jira_http=jira_http,
        http_client=http_client,
        forge_client=forge_client,
        install_keys=HttpInstallKeys(
            keys_client,
            settings.install_keys_url,
            timeout_seconds=settings.install_keys_timeout_seconds,
            observe=metrics.outbound_observer("install_keys"),
        ),
        jira=jira,
        sentry=sentry,
        glance_sentry=CachedSentryIssues(sentry, clock),
        forge_keys=HttpForgeJwks(forge_client, settings.forge_jwks_url,
                                 timeout_seconds=settings.install_keys_timeout_seconds,
                                 observe=metrics.outbound_observer("forge_keys")),
    )

def install_keys_client(settings: Settings) -> httpx.AsyncClient:
    """§4.3: no redirects, timeout at most 3 s, a small pool."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.install_keys_timeout_seconds),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
        headers={"accept": "application/x-pem-file, text/plain"},
    )
