"""`sentry-jira secrets reencrypt` (§A, SPEC §3.1 key rotation; docs/configuration.md).

With `SENTRY_JIRA_SECRET_KEY=new,old` it rewrites every encrypted column and the key check
under `new` in one transaction, while servers run; afterwards `old` can be dropped. Prints
counts, never values. Exit status as the other admin commands: 0 done, 1 refused (no
database, a value no key can read, database busy), 2 usage or configuration error.
"""

from __future__ import annotations

import os

import click

from adapters.cli.admin import CONTEXT, AdminGroup, emit, fail, json_option


@click.group("secrets", cls=AdminGroup, context_settings=CONTEXT)
def secrets_group() -> None:
    """Encrypted values at rest: re-encrypt them under the first secret key."""


@secrets_group.command("reencrypt", context_settings=CONTEXT)
@json_option
def reencrypt(as_json: bool) -> None:
    """Re-encrypt every encrypted value and the key check under the first key of
    SENTRY_JIRA_SECRET_KEY (all keys listed there decrypt)."""
    from adapters.config import ConfigError, load_settings
    from adapters.sqlite.reencrypt import UnreadableValueError, reencrypt_all
    from adapters.wiring import open_database
    from core.model.errors import Unavailable

    try:
        settings = load_settings(os.environ)
    except ConfigError as err:
        fail(f"configuration error: {err}", 2)
    if settings.postgres_url is not None:  # §9
        from adapters.crypto import SecretBox
        from adapters.postgres.reencrypt import reencrypt_postgres

        try:
            counts = reencrypt_postgres(settings.postgres_url, SecretBox(settings.secret_keys))
        except UnreadableValueError as err:
            fail(str(err), 1)
        except Unavailable as err:
            fail(err.detail, 1)
        emit({"reencrypted": counts}, as_json,
             lambda value: [f"{where}: {count}" for where, count in value["reencrypted"].items()])
        return
    if not settings.database.exists():
        fail(f"no database at {settings.database}", 1)
    try:
        database = open_database(settings)
    except ConfigError as err:
        fail(f"configuration error: {err}", 2)
    try:
        counts = reencrypt_all(database)
    except UnreadableValueError as err:
        fail(str(err), 1)
    except Unavailable as err:
        fail(err.detail, 1)
    finally:
        database.close()
    emit({"reencrypted": counts}, as_json,
         lambda value: [f"{where}: {count}" for where, count in value["reencrypted"].items()])


secrets_commands = [secrets_group]
