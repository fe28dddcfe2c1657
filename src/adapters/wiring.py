"""The composition root: the only place that builds adapters (STYLE "One composition root")."""

from __future__ import annotations

from typing import Any

import attrs
import httpx

from adapters.clock import SystemClock
from adapters.config import ConfigError, Settings
from adapters.crypto import SecretBox, read_or_create_key_file
from adapters.sentry_http import HttpSentryApi
from adapters.sqlite.database import Database, KeyMismatchError, holds_encrypted_data
from adapters.sqlite.schema import ALL_MIGRATIONS
from adapters.sqlite.tenants import SqliteTenantStore
from ports.clock import Clock
from ports.sentry import SentryApi
from ports.tenants import TenantStore


@attrs.define
class Container:
    """Every port the use cases need, built once; tests build it with fakes."""

    settings: Settings
    tenants: TenantStore
    clock: Clock
    database: Database | None = None
    sentry: SentryApi | None = None
    # The one outbound HTTP client (connection pool) of the process; closed on shutdown.
    http_client: httpx.AsyncClient | None = None

    async def startup(self) -> None:
        """Lifespan start: long-lived clients and workers start here."""

    async def shutdown(self) -> None:
        """Lifespan end: close what startup opened."""
        if self.http_client is not None:
            await self.http_client.aclose()

    async def health(self) -> dict[str, Any]:
        """Figures for /health; raises Unavailable when storage does not answer."""
        if self.database is not None:
            await self.database.ping()
        return {}

    def close(self) -> None:
        if self.database is not None:
            self.database.close()


def open_database(settings: Settings) -> Database:
    """Open (and migrate) the database with the configured or generated secret key."""
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
    database = Database(settings.database, SecretBox(keys))
    try:
        database.migrate(ALL_MIGRATIONS)
        database.check_key()
    except KeyMismatchError:
        database.close()
        raise ConfigError(
            "SENTRY_JIRA_SECRET_KEY", "cannot decrypt the data in the database with this key"
        ) from None
    except BaseException:
        database.close()
        raise
    return database


def bootstrap(settings: Settings) -> Container:
    """Build the production container from settings."""
    database = open_database(settings)
    http_client = httpx.AsyncClient(
        follow_redirects=False, timeout=settings.http_timeout_seconds, trust_env=False
    )
    return Container(
        settings=settings,
        tenants=SqliteTenantStore(database),
        clock=SystemClock(),
        database=database,
        sentry=HttpSentryApi(http_client, settings.http_timeout_seconds),
        http_client=http_client,
    )
