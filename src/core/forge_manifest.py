"""The Forge manifest of this deployment (SPEC §8.2, first bullet), built from settings alone.

A plain dict: the adapter writes it as YAML (`sentry-jira forge manifest`). Every key and path
the Forge routes and the FIT verifier rely on comes from core/forge/endpoints.py (re-exported
here), so the manifest and the service cannot drift apart.
"""

from __future__ import annotations

import re
from typing import Any

from core.describe import describe
from core.forge.endpoints import FORGE_ENDPOINT_KEYS as FORGE_ENDPOINT_KEYS
from core.forge.endpoints import FORGE_MODULE_KEYS as FORGE_MODULE_KEYS
from core.forge.endpoints import FORGE_ROUTE_MODULE_KEYS as FORGE_ROUTE_MODULE_KEYS
from core.forge.endpoints import FORGE_ROUTE_PATHS as FORGE_ROUTE_PATHS
from core.model.settings import AppSettings

# §8.2: the Forge app id, an ARI ending in a UUID (what `forge register` writes into manifest.yml).
FORGE_APP_ID_PATTERN = re.compile(
    r"ari:cloud:ecosystem::app/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)

# The one remote: this service, at SENTRY_JIRA_BASE_URL (base path included).
FORGE_REMOTE_KEY = "sentry-jira"
# Forge's `app.runtime` is required by the manifest schema even for an app without functions.
FORGE_RUNTIME = "nodejs22.x"

# Forge events per trigger module.
ISSUE_UPDATED_EVENT = "avi:jira:updated:issue"
LIFECYCLE_EVENTS = ("avi:forge:installed:app", "avi:forge:upgraded:app")
KEEPALIVE_INTERVAL = "hour"

# §8.2 the fewest scopes: the system token, reading issues (status, changelog, search) and
# users (assignee mapping); e-mail addresses only with the e-mail option.
FORGE_SCOPES = ("read:app-system-token", "read:jira-work", "read:jira-user")
FORGE_EMAIL_SCOPE = "read:email-address:jira"

# Connect on Forge (--connect-modules): a Connect descriptor module type becomes `jira:<type>`
# under `connectModules`; Connect's `lifecycle` becomes the single `jira:lifecycle` module.
CONNECT_MODULE_PREFIX = "jira:"
CONNECT_LIFECYCLE_KEY = "connect-lifecycle"

_MODULE_KEY = re.compile(r"[A-Za-z0-9_-]{1,100}")


class ForgeManifestError(ValueError):
    """The settings cannot make a manifest Forge would accept; the message names the variable."""


def is_forge_app_id(value: str) -> bool:
    """§8.2: `ari:cloud:ecosystem::app/<uuid>` (lower-case hex, as Forge writes it)."""
    return FORGE_APP_ID_PATTERN.fullmatch(value) is not None


def forge_manifest(
    settings: AppSettings, *, app_id: str | None, connect_modules: bool = False
) -> dict[str, Any]:
    """§8.2: the Forge manifest for this deployment.

    `app.id` = the Forge app id; one remote whose `baseUrl` is the base URL; the issue-updated,
    install/upgrade, preUninstall and hourly keep-alive modules, each pointing at an endpoint
    with `auth.appSystemToken.enabled`; the fewest scopes. With `connect_modules`, also the
    Connect descriptor (describe()) as Connect on Forge: `app.connect`, every descriptor module
    under `connectModules` and the Connect scopes.
    """
    if app_id is None:
        raise ForgeManifestError("SENTRY_JIRA_FORGE_APP_ID: required to write a Forge manifest")
    if not is_forge_app_id(app_id):
        raise ForgeManifestError(
            "SENTRY_JIRA_FORGE_APP_ID: expected ari:cloud:ecosystem::app/<uuid>"
        )
    if not settings.base_url.startswith("https://"):
        raise ForgeManifestError(
            "SENTRY_JIRA_BASE_URL: Forge calls the remote over https; set an https base URL"
        )
    app: dict[str, Any] = {"id": app_id, "runtime": {"name": FORGE_RUNTIME}}
    scopes = list(FORGE_SCOPES)
    if settings.use_email_scope:
        scopes.append(FORGE_EMAIL_SCOPE)
    manifest: dict[str, Any] = {
        "app": app,
        "modules": _forge_modules(),
        "remotes": [
            {
                "key": FORGE_REMOTE_KEY,
                "baseUrl": settings.base_url,
                # Links, journal entries and watermarks are kept on the remote: declare it.
                "operations": ["storage"],
                "storage": {"inScopeEUD": True},
            }
        ],
        "permissions": {"scopes": scopes},
    }
    if connect_modules:
        descriptor = describe(settings)
        app["connect"] = {
            "key": descriptor["key"],
            "remote": FORGE_REMOTE_KEY,
            "authentication": "jwt",
        }
        manifest["connectModules"] = connect_modules_of(descriptor)
        scopes.extend(connect_scopes(descriptor["scopes"]))
    check_unique_module_keys(manifest)
    return manifest


def _forge_modules() -> dict[str, Any]:
    def endpoint(route: str) -> dict[str, Any]:
        return {
            "key": FORGE_ENDPOINT_KEYS[route],
            "remote": FORGE_REMOTE_KEY,
            "route": {"path": FORGE_ROUTE_PATHS[route]},
            "auth": {"appSystemToken": {"enabled": True}},
        }

    return {
        "trigger": [
            {
                "key": FORGE_MODULE_KEYS["issue-updated"],
                "endpoint": FORGE_ENDPOINT_KEYS["issue-updated"],
                "events": [ISSUE_UPDATED_EVENT],
            },
            {
                "key": FORGE_MODULE_KEYS["lifecycle"],
                "endpoint": FORGE_ENDPOINT_KEYS["lifecycle"],
                "events": list(LIFECYCLE_EVENTS),
            },
        ],
        "preUninstall": [
            {"key": FORGE_MODULE_KEYS["uninstall"], "endpoint": FORGE_ENDPOINT_KEYS["uninstall"]}
        ],
        "scheduledTrigger": [
            {
                "key": FORGE_MODULE_KEYS["keepalive"],
                "endpoint": FORGE_ENDPOINT_KEYS["keepalive"],
                "interval": KEEPALIVE_INTERVAL,
            }
        ],
        "endpoint": [endpoint(route) for route in FORGE_ROUTE_PATHS],
    }


def connect_modules_of(descriptor: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every module of the Connect descriptor in Forge's `connectModules` form.

    `lifecycle` → one `jira:lifecycle` module; each `modules.<type>` (a list, or one object for
    single modules such as `configurePage`) → `jira:<type>`, a list whose entries all carry a
    `key` (kept when the descriptor has one, else `connect-<type>-<n>`).
    """
    result: dict[str, list[dict[str, Any]]] = {}
    lifecycle = descriptor.get("lifecycle")
    if lifecycle:
        result[CONNECT_MODULE_PREFIX + "lifecycle"] = [{"key": CONNECT_LIFECYCLE_KEY, **lifecycle}]
    for module_type, value in descriptor.get("modules", {}).items():
        entries = value if isinstance(value, list) else [value]
        converted = []
        for number, entry in enumerate(entries, start=1):
            key = entry.get("key") or f"connect-{module_type}-{number}"
            converted.append({"key": key, **{k: v for k, v in entry.items() if k != "key"}})
        result[CONNECT_MODULE_PREFIX + module_type] = converted
    return result


def connect_scopes(descriptor_scopes: list[str]) -> list[str]:
    """A Connect descriptor scope as Forge names it: `read` → `read:connect-jira`,
    `access_email_addresses` → `access-email-addresses:connect-jira`."""
    return [scope.lower().replace("_", "-") + ":connect-jira" for scope in descriptor_scopes]


def module_keys(manifest: dict[str, Any]) -> list[str]:
    """Every module key of the manifest, Forge modules then Connect modules (in order)."""
    keys: list[str] = []
    for section in (manifest.get("modules", {}), manifest.get("connectModules", {})):
        for entries in section.values():
            keys.extend(str(entry.get("key")) for entry in entries)
    return keys


def check_unique_module_keys(manifest: dict[str, Any]) -> None:
    """Forge: module keys are unique across `modules` and `connectModules`, and shaped
    `[A-Za-z0-9_-]+`. A clash is a bug in this service's modules, caught before writing."""
    seen: set[str] = set()
    for key in module_keys(manifest):
        if not _MODULE_KEY.fullmatch(key):
            raise ForgeManifestError(f"module key {key!r}: use letters, digits, '-' or '_'")
        if key in seen:
            raise ForgeManifestError(f"module key {key!r} is used twice in the manifest")
        seen.add(key)
