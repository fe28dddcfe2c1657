"""§8.2: the Forge routes and module keys — the one source for both the manifest generator
(core/forge_manifest.py) and the transport (adapters/http/forge/routes.py, core/forge/verify.py),
so the manifest Forge is given and the routes this service serves cannot drift apart.

A FIT names the module it was minted for (`app.module.key`). SPEC §8.2 names the endpoint key;
Atlassian's invocation-context example shows the invoking module's key (the trigger). A route
accepts exactly its own set FORGE_ROUTE_MODULE_KEYS[route] — its endpoint key and its trigger's
key — and the sets are disjoint, so a token minted for one route cannot be replayed on another
(docs/forge-transport.md, "Which app.module.key a route accepts").
"""

from __future__ import annotations

from typing import Final

# The routes' common prefix, under the base path (the remote's baseUrl).
FORGE_ROUTE_PREFIX: Final = "/extensions/jira/forge"

# route name → its path relative to the remote's baseUrl (§8.2).
FORGE_ROUTE_PATHS: Final[dict[str, str]] = {
    route: f"{FORGE_ROUTE_PREFIX}/{route}/"
    for route in ("issue-updated", "lifecycle", "uninstall", "keepalive")
}

# route → the `endpoint` module serving it. Forge caps endpoint keys at 23 characters.
FORGE_ENDPOINT_KEYS: Final[dict[str, str]] = {
    "issue-updated": "issue-updated-endpoint",
    "lifecycle": "lifecycle-endpoint",
    "uninstall": "uninstall-endpoint",
    "keepalive": "keepalive-endpoint",
}

# route → the module that invokes its endpoint (trigger, preUninstall, scheduledTrigger).
FORGE_MODULE_KEYS: Final[dict[str, str]] = {
    "issue-updated": "issue-updated-trigger",
    "lifecycle": "lifecycle-trigger",
    "uninstall": "pre-uninstall",
    "keepalive": "keepalive-trigger",
}

# route → every `app.module.key` a FIT sent to that route may carry (and no other route's).
FORGE_ROUTE_MODULE_KEYS: Final[dict[str, frozenset[str]]] = {
    route: frozenset({FORGE_ENDPOINT_KEYS[route], FORGE_MODULE_KEYS[route]})
    for route in FORGE_ROUTE_PATHS
}
