"""§8.2: the endpoint keys of the generated manifest, one per Forge route. A FIT names the
module it was minted for (`app.module.key`); a route accepts only its own key, so a token
for one route cannot be replayed on another.

One place for the keys until the manifest generator (forge-manifest branch) exports its own.
"""

from __future__ import annotations

from typing import Final

# route name (the path segment under /extensions/jira/forge/) → manifest endpoint key
FORGE_ENDPOINT_KEYS: Final = {
    "issue-updated": "issue-updated-endpoint",
    "lifecycle": "lifecycle-endpoint",
    "uninstall": "uninstall-endpoint",
    "keepalive": "keepalive-endpoint",
}
FORGE_ROUTE_PREFIX: Final = "/extensions/jira/forge"
