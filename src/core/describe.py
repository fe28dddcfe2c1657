"""describe: the Atlassian Connect descriptor (D1, D2), built from settings alone."""

from __future__ import annotations

from typing import Any

from core.model.settings import AppSettings

INSTALLED_PATH = "/extensions/jira/installed/"
UNINSTALLED_PATH = "/extensions/jira/uninstalled/"
ISSUE_UPDATED_PATH = "/extensions/jira/issue-updated/"
# §8.1: the webhook transport's inbound route (not in the Connect descriptor).
WEBHOOK_PATH = "/extensions/jira/webhook/{site_id}/"
# §10: the pages Jira frames (Connect only), and the static files they load.
CONFIGURE_PATH = "/extensions/jira/configure/"
ISSUE_GLANCE_PATH = "/extensions/jira/issue-glance/"
STATIC_PATH = "/extensions/jira/static"
# Module keys: unique in the descriptor, [a-z0-9-] (the Forge manifest's connectModules reuse them).
CONFIGURE_MODULE_KEY = "sentry-configure"
POST_INSTALL_MODULE_KEY = "sentry-get-started"
GLANCE_MODULE_KEY = "sentry-issue-glance"


def page_modules(settings: AppSettings) -> dict[str, Any]:
    """§10, D1: the configure page (also the post-install page) and the issue glance."""
    admin_only = [{"condition": "user_is_admin"}]
    return {
        "postInstallPage": {
            "key": POST_INSTALL_MODULE_KEY,
            "name": {"value": f"Get started with {settings.app_name}"},
            "url": CONFIGURE_PATH,
            "conditions": admin_only,
        },
        "configurePage": {
            "key": CONFIGURE_MODULE_KEY,
            "name": {"value": f"Configure {settings.app_name}"},
            "url": CONFIGURE_PATH,
            "conditions": admin_only,
        },
        "jiraIssueGlances": [
            {
                "key": GLANCE_MODULE_KEY,
                "name": {"value": "Sentry"},
                "icon": {"width": 24, "height": 24, "url": f"{STATIC_PATH}/sentry-glance.svg"},
                "content": {"type": "label", "label": {"value": "Sentry issues"}},
                "target": {
                    "type": "web_panel",
                    "url": ISSUE_GLANCE_PATH + "?issueKey={issue.key}",
                },
            }
        ],
    }


def describe(settings: AppSettings) -> dict[str, Any]:
    """D1: the descriptor; D2: `baseUrl` and `key` come from settings, never from a request."""
    scopes = ["read"]
    if settings.use_email_scope:
        scopes.append("access_email_addresses")
    return {
        "name": settings.app_name,
        "description": "Syncs Jira issue status and assignee changes to linked Sentry issues.",
        "key": settings.app_key,
        "baseUrl": settings.base_url,
        "vendor": {"name": settings.app_name, "url": settings.base_url},
        "authentication": {"type": "jwt"},
        "lifecycle": {"installed": INSTALLED_PATH, "uninstalled": UNINSTALLED_PATH},
        "apiVersion": 1,
        "apiMigrations": {"gdpr": True, "context-qsh": True, "signed-install": True},
        "scopes": scopes,
        "modules": {
            "webhooks": [
                {"event": "jira:issue_updated", "url": ISSUE_UPDATED_PATH, "excludeBody": False}
            ],
            **page_modules(settings),
        },
    }
