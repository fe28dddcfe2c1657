"""What the CLI user typed, instead of the API's field names (§3, #18).

The admin use cases validate the HTTP API's JSON and name its fields in their errors
(`sentry_url is required …`, `status_map.10000.resolve must be …`). The CLI builds the same
bodies from arguments, options and variables, so its user must read the names they typed:
`--sentry-url`, `SENTRY_JIRA_SENTRY_TOKEN`, `ISSUE_KEY`. The core stays as it is; this table is
the CLI adapter's translation, applied to every refusal `adapters.cli.admin.run` prints.
"""

from __future__ import annotations

import re
from typing import Final

SENTRY_TOKEN: Final = "the Sentry token (SENTRY_JIRA_SENTRY_TOKEN or --sentry-token-stdin)"
JIRA_CREDENTIAL: Final = "the Jira credential (SENTRY_JIRA_JIRA_CREDENTIAL or standard input)"

# API field → CLI name, wherever the field is named (underscored names are never prose).
FIELDS: Final[dict[str, str]] = {
    "sentry_url": "--sentry-url",
    "sentry_token": SENTRY_TOKEN,
    "sync_status": "--sync-status",
    "sync_assignee": "--sync-assignee",
    "resolution_strategy": "--resolution-strategy",
    "skip_archived": "--skip-archived",
    "status_map": "--status-map",
    "issue_key": "ISSUE_KEY",
    "sentry_issue_ids": "SENTRY_ISSUE_IDS",
    "account_id": "ACCOUNT_ID",
    "sentry_user_id": "SENTRY_USER_ID",
    "base_url": "BASE_URL",
    "auth.email": "--email",
}
# Names that are also plain words ("a new org"): translated only where a message starts with
# them ("org must be …", "tenant id must be …").
LEADING: Final[dict[str, str]] = {
    "tenant id": "TENANT_ID",
    "site id": "SITE_ID",
    "search token id": "TOKEN_ID",
    "dead letter id": "DEAD_LETTER_ID",
    "org": "ORG",
    "limit": "--limit",
    "flavor": "--flavor",
    "credential": JIRA_CREDENTIAL,
}
# Whole messages about the API's `auth` object, which the CLI spells --email / --pat.
WHOLE: Final[dict[str, str]] = {
    'auth kind "api-token" is for flavor "cloud"; use "pat"':
        "--email (a Cloud API token) is for --flavor cloud; for data-center use --pat",
    'auth kind "pat" is for flavor "data-center"; use "api-token"':
        "--pat is for --flavor data-center; for cloud use --email <address>",
    'auth kind "pat" takes no email': "give --email or --pat, not both",
    'auth.kind must be "api-token" or "pat"':
        "give --email <address> (Cloud API token) or --pat (Data Center)",
}

# A field, then any `.sub.path` and `[]` the core appended (status_map.10000.resolve[]).
_FIELD = re.compile(
    r"(?<![\w.-])(" + "|".join(re.escape(name) for name in sorted(FIELDS, key=len, reverse=True))
    + r")((?:\.[\w-]+)*)(\[\])?(?![\w])"
)
_LEADING = re.compile(
    r"^(" + "|".join(re.escape(name) for name in sorted(LEADING, key=len, reverse=True))
    + r")(?= (?:must|is|has|keys)\b)"
)


def cli_message(detail: str) -> str:
    """A use case's refusal in the CLI's words (flags, arguments, variables)."""
    if detail in WHOLE:
        return WHOLE[detail]
    text = _LEADING.sub(lambda m: LEADING[m.group(1)], detail, count=1)
    return _FIELD.sub(_field, text)


def _field(match: re.Match[str]) -> str:
    name, path, each = FIELDS[match.group(1)], match.group(2), match.group(3)
    if path:
        name = f"{name} ({path.lstrip('.')}{each or ''})"
    elif each:
        name = f"each of {name}"
    return name
