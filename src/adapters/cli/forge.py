"""`sentry-jira forge manifest [--out FILE] [--connect-modules]` (SPEC §8.2, first bullet).

Writes the Forge manifest of this deployment as YAML, from configuration alone: no database,
no network. Exit status: 0 written, 1 the file cannot be written, 2 configuration error (no
or a malformed SENTRY_JIRA_FORGE_APP_ID, a base URL Forge cannot call) or usage error.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
import yaml

from adapters.cli.admin import CONTEXT, AdminGroup, fail, json_option

HEADER = (
    "# Forge manifest written by `sentry-jira forge manifest` (SPEC §8.2) from this\n"
    "# deployment's configuration. Edit the configuration and write it again rather than\n"
    "# editing it: the service checks a Forge Invocation Token's module key against it.\n"
)


def manifest_yaml(manifest: dict[str, Any]) -> str:
    """The manifest as block-style YAML, keys in the builder's order."""
    body = yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False,
                          allow_unicode=True, width=100)
    return HEADER + body


@click.group("forge", cls=AdminGroup, context_settings=CONTEXT)
def forge_group() -> None:
    """Forge (Forge Remote): the manifest that points a Forge app at this service."""


@forge_group.command("manifest", context_settings=CONTEXT)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the manifest to this file (default: standard output).")
@click.option("--connect-modules", is_flag=True,
              help="Also carry the Connect descriptor's modules (Connect on Forge), for sites "
                   "that still run the Connect app.")
@json_option
def manifest(out: Path | None, connect_modules: bool, as_json: bool) -> None:
    """Write the Forge manifest.yml for this deployment: app id from SENTRY_JIRA_FORGE_APP_ID,
    remote = SENTRY_JIRA_BASE_URL, the issue-updated, install/upgrade, pre-uninstall and
    hourly keep-alive modules, and the fewest scopes."""
    from adapters.config import ConfigError, load_settings
    from core.forge_manifest import ForgeManifestError, forge_manifest

    try:
        settings = load_settings(os.environ)
    except ConfigError as err:
        fail(f"configuration error: {err}", 2)
    try:
        document = forge_manifest(settings.app, app_id=settings.app.forge_app_id,
                                  connect_modules=connect_modules)
    except ForgeManifestError as err:
        fail(f"configuration error: {err}", 2)
    # --json: the same manifest as JSON (itself valid YAML), e.g. for jq.
    text = json.dumps(document, indent=2) + "\n" if as_json else manifest_yaml(document)
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as err:
        fail(f"cannot write {out}: {err.strerror}", 1)
    click.echo(f"wrote {out}", err=True)


forge_commands = [forge_group]
