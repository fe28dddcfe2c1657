"""The `sentry-jira` command."""

from __future__ import annotations

import logging
import os
import sys

import click

from adapters.cli.admin import AdminGroup, admin_commands
from adapters.cli.secrets import secrets_commands
from adapters.cli.sites import sites_commands
from adapters.cli.sync import sync_commands
from adapters.config import ConfigError, Settings, load_settings


def fail_config(err: ConfigError) -> None:
    click.echo(f"sentry-jira: configuration error: {err}", err=True)
    sys.exit(2)


def settings_from_env(host: str = "127.0.0.1", port: int = 8080) -> Settings:
    try:
        return load_settings(os.environ, host=host, port=port)
    except ConfigError as err:
        fail_config(err)
        raise  # unreachable


@click.group(cls=AdminGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    from adapters.http.app import create_app
    from adapters.http.server import run_server
    from adapters.wiring import bootstrap

    settings = settings_from_env(host, port)
    try:
        container = bootstrap(settings)
    except ConfigError as err:
        fail_config(err)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # httpx logs every outbound URL at INFO: search text and ids would reach the log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
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

for _command in secrets_commands:  # secrets reencrypt (§A, key retirement)
    main.add_command(_command)


if __name__ == "__main__":
    main()
