"""The `sentry-jira` command."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click

from adapters.cli.admin import AdminGroup, admin_commands
from adapters.cli.db import db_commands
from adapters.cli.forge import forge_commands
from adapters.cli.secrets import secrets_commands
from adapters.cli.sites import sites_commands
from adapters.cli.sync import sync_commands
from adapters.config import ConfigError, Settings, load_settings
from adapters.logs import package_version

# The inbound transports `serve` mounts (the start-up line names them): the Connect app's
# webhook and the X-Hub-Signature webhook of registered sites (§8.1).
TRANSPORTS = ("connect", "webhook")


def fail_config(err: ConfigError) -> NoReturn:
    fail_startup(f"configuration error: {err}")


def fail_startup(message: str) -> NoReturn:
    """§3: a configuration or environment mistake is one line on stderr, exit 2."""
    click.echo(f"sentry-jira: {message}", err=True)
    sys.exit(2)


def settings_from_env(host: str = "127.0.0.1", port: int = 8080) -> Settings:
    try:
        return load_settings(os.environ, host=host, port=port)
    except ConfigError as err:
        fail_config(err)


@click.group(cls=AdminGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_version(), "--version", prog_name="sentry-jira",
                      message="%(prog)s %(version)s", help="Print the version and exit.")
def main() -> None:
    """sentry-jira: a Jira Cloud (Atlassian Connect) app that syncs issues to Sentry."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on.",
)
def serve(host: str, port: int) -> None:
    """Run the HTTP service."""
    from adapters.cli.admin import open_container
    from adapters.http.app import create_app
    from adapters.http.server import CannotListen, check_can_listen, run_server
    from adapters.logs import log_startup, start_logging

    settings = settings_from_env(host, port)
    start_logging(settings)
    try:  # before the database is opened and the worker started
        check_can_listen(host, port)
    except CannotListen as err:
        fail_startup(str(err))
    container = open_container(settings)
    # §3: Forge's routes are served only with SENTRY_JIRA_FORGE_APP_ID set (§8.2).
    forge = ("forge",) if settings.app.forge_app_id else ()
    log_startup(settings, process="serve", transports=TRANSPORTS + forge)
    try:
        run_server(create_app(container), host=host, port=port)
    finally:
        container.close()


for _command in admin_commands:  # §A administration commands
    main.add_command(_command)

for _command in sync_commands:  # the sync worker, journal and dead letters (W5–W9, §A)
    main.add_command(_command)

for _command in sites_commands:  # webhook sites (§8.1)
    main.add_command(_command)

for _command in db_commands:  # db copy (§9)
    main.add_command(_command)

for _command in secrets_commands:  # secrets reencrypt (§A, key retirement)
    main.add_command(_command)

for _command in forge_commands:  # forge manifest (§8.2)
    main.add_command(_command)


if __name__ == "__main__":
    main()
