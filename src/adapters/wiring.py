"""The composition root: the only place that builds adapters (STYLE "One composition root")."""

from __future__ import annotations

from typing import Any

import attrs
import httpx

from adapters.clock import SystemClock
from adapters.config import ConfigError, Settings
from adapters.crypto import SecretBox, read_or_create_key_file
from adapters.jira_http import HttpJiraApi, jira_http_client
from adapters.sqlite.database import Database, KeyMismatchError, holds_encrypted_data
from adapters.sqlite.schema import ALL_MIGRATIONS
from adapters.sqlite.tenants import SqliteTenantStore
from ports.clock import Clock
from ports.jira import JiraApi
from ports.tenants import TenantStore


@attrs.define
class Container:
    """Every port the use cases need, built once; tests build it with fakes."""

    settings: Settings
    tenants: TenantStore
    clock: Clock
    database: Database | None = None
    jira: JiraApi | None = None
    jira_http: httpx.AsyncClient | None = None  # the shared client behind `jira`, if any

    async def startup(self) -> None:
        """Lifespan start: long-lived clients and workers start here."""

    async def shutdown(self) -> None:
        """Lifespan end: close what startup opened."""
        if self.jira_http is not None:
            await self.jira_http.aclose()

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
    clock = SystemClock()
    jira_http = jira_http_client(settings)
    return Container(
        settings=settings,
        tenants=SqliteTenantStore(database),
        clock=clock,
        database=database,
        jira=HttpJiraApi(jira_http, settings, clock=clock),
        jira_http=jira_http,
    )
