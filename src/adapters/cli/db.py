"""`sentry-jira db copy --to <url or path>` (SPEC §9; adapters/db_copy.py).

Copies every table of the configured database into an empty database of either engine.
Exit status: 0 copied and verified, 1 refused (a non-empty target, a failed verification,
a database that does not answer), 2 usage or configuration error (a password in the target
URL, a bad configuration).
"""

from __future__ import annotations

import os

import click

from adapters.cli.admin import CONTEXT, AdminGroup, emit, fail, json_option


@click.group("db", cls=AdminGroup, context_settings=CONTEXT)
def db_group() -> None:
    """The database itself: copy it to another engine or place."""


@db_group.command("copy", context_settings=CONTEXT)
@click.option("--to", "target", required=True, metavar="URL_OR_PATH",
              help="An empty database: a SQLite file path or a postgresql:// URL without "
                   "password (use PGPASSWORD or PGPASSFILE).")
@json_option
def copy(target: str, as_json: bool) -> None:
    """Copy every table to an empty database of either engine, verified by row counts and
    checksums. Stop `serve` and `worker` first: deliveries recorded during the copy would
    not be in the target."""
    from adapters.config import ConfigError, load_settings, redacted_postgres_url
    from adapters.crypto import SecretBox, read_or_create_key_file
    from adapters.db_copy import CopyRefused, VerifyFailed, copy_database, is_postgres

    try:
        settings = load_settings(os.environ)
    except ConfigError as err:
        fail(f"configuration error: {err}", 2)
    if "://" in target and not is_postgres(target):
        fail("--to: a SQLite file path or a postgresql:// URL", 2)
    if settings.postgres_url is None and not settings.database.exists():
        fail(f"no database at {settings.database}", 1)
    keys = settings.secret_keys
    if not keys:
        key = read_or_create_key_file(settings.key_file, may_create=False)
        if key is None:
            fail(f"configuration error: SENTRY_JIRA_SECRET_KEY: unset and no key file at "
                 f"{settings.key_file}", 2)
        keys = (key,)
    source = settings.postgres_url or settings.database
    shown = redacted_postgres_url(target) if is_postgres(target) else target
    try:
        copied = copy_database(source, target, SecretBox(keys))
    except CopyRefused as err:
        fail(str(err), 2 if "password" in str(err) else 1)
    except VerifyFailed as err:
        fail(str(err), 1)
    result = {"from": settings.database_location, "to": shown,
              "tables": {c.table: {"rows": c.rows, "sha256": c.checksum} for c in copied}}
    emit(result, as_json, lambda value: [
        f"copied {value['from']} -> {value['to']}",
        *(f"{name}: {t['rows']} rows, sha256 {t['sha256'][:16]}"
          for name, t in value["tables"].items())])


db_commands = [db_group]
