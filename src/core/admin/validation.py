"""Validation of administration input (SPEC §A): every refusal is a BadRequest naming the field.

Details never repeat the refused value: an operator may have pasted a secret into the wrong
field (a token in a URL's userinfo, say), and error details end up in terminals and logs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from core.model.bindings import ResolutionStrategy, StatusRule
from core.model.errors import BadRequest
from core.model.host_patterns import HostPattern, HostRefused, check_sentry_url

ORG_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,49}", re.ASCII)
ISSUE_KEY = re.compile(r"[A-Z][A-Z0-9_]*-[0-9]+", re.ASCII)
# A Jira user's identity (§A account mappings, W5): a Cloud `accountId` (`5b10ac8d…`,
# `712020:0c2d…`) or a Data Center `key` (§8.1: `JIRAUSER10100`, or a legacy key, the
# lower-cased username: `john.smith`, `jane@corp.example`, `müller`, `o'neil`). Letters of any
# script, digits and `_ . @ + ' : -`; no space, control character, slash, `%`, `<`, `&` or quote,
# so a key is one path segment and stays plain text wherever it is shown.
ACCOUNT_ID = re.compile(r"[\w.@+':-]{1,128}")
# Numeric ids (tenant, search token, Sentry issue / user, Jira project / status): no sign,
# no leading zero ("0123" and "123" must not become two different ids).
DIGITS = re.compile(r"0|[1-9][0-9]{0,18}", re.ASCII)

MAX_ISSUE_KEY_LENGTH = 255
MAX_SENTRY_URL_LENGTH = 2048
MAX_SENTRY_TOKEN_LENGTH = 4096
MAX_SENTRY_ISSUE_IDS = 100  # per Jira issue key and org
MAX_STATUS_MAP_PROJECTS = 1000
MAX_STATUSES_PER_LIST = 1000


MAX_SQLITE_INTEGER = 2**63 - 1


def parse_id(value: object, field: str) -> int:
    """An integer id given as a path segment, a CLI argument or a JSON integer."""
    if isinstance(value, bool):
        raise BadRequest(f"{field} must be an integer id")
    if isinstance(value, str) and DIGITS.fullmatch(value):
        value = int(value)
    # SQLite integers are 64-bit signed: a larger id names nothing and must not reach it.
    if not isinstance(value, int) or not 0 <= value <= MAX_SQLITE_INTEGER:
        raise BadRequest(f"{field} must be an integer id")
    return value


def parse_org(value: object, field: str = "org") -> str:
    if not isinstance(value, str) or not ORG_SLUG.fullmatch(value):
        raise BadRequest(f"{field} must be an org slug matching ^[a-z0-9][a-z0-9_-]{{0,49}}$")
    return value


def parse_issue_key(value: object, field: str = "issue_key") -> str:
    if (
        not isinstance(value, str)
        or len(value) > MAX_ISSUE_KEY_LENGTH
        or not ISSUE_KEY.fullmatch(value)
    ):
        raise BadRequest(f"{field} must be a Jira issue key matching ^[A-Z][A-Z0-9_]*-\\d+$")
    return value


def parse_account_id(value: object, field: str = "account_id") -> str:
    """A Cloud `accountId` or a Data Center user `key` (§8.1)."""
    if not isinstance(value, str) or not ACCOUNT_ID.fullmatch(value):
        raise BadRequest(
            f"{field} must be a Jira account id or Data Center user key: 1-128 letters, "
            "digits and _ . @ + ' : -"
        )
    return value


def parse_digit_string(value: object, field: str) -> str:
    """A numeric id carried as a JSON string, as Sentry and Jira do."""
    if not isinstance(value, str) or not DIGITS.fullmatch(value):
        raise BadRequest(f"{field} must be a string of digits")
    return value


def parse_bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"{field} must be true or false")
    return value


def parse_sentry_url(value: object, field: str = "sentry_url") -> str:
    """An absolute http(s) URL without userinfo, query or fragment; trailing `/` dropped."""
    refusal = f"{field} must be an absolute http(s) URL without user info, query or fragment"
    if (
        not isinstance(value, str)
        or not value
        or len(value) > MAX_SENTRY_URL_LENGTH
        or not value.isascii()
        or any(c.isspace() or not c.isprintable() for c in value)
        or "?" in value
        or "#" in value
    ):
        raise BadRequest(refusal)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise BadRequest(refusal) from None
    if (
        parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or "@" in parts.netloc
        or parts.hostname.endswith(".")
        or not parts.netloc
    ):
        raise BadRequest(refusal)
    normalised = f"{parts.scheme.lower()}://{parts.netloc}{parts.path}".rstrip("/")
    return normalised


def check_sentry_url_allowed(url: str, sentry_hosts: tuple[HostPattern, ...]) -> None:
    """§8.3: BadRequest unless the Sentry URL's origin is allowed by the host patterns."""
    try:
        check_sentry_url(url, sentry_hosts)
    except HostRefused:
        allowed = ", ".join(str(p) for p in sentry_hosts) or "any public https host"
        raise BadRequest(
            "sentry_url is not an allowed Sentry host (SENTRY_JIRA_SENTRY_HOSTS: "
            f"{allowed}); loopback, private, link-local and numeric hosts need a pattern"
        ) from None


def parse_header_token(value: object, field: str, max_length: int) -> str:
    """A non-empty token that goes into a header (a Sentry token, a Jira API token or PAT):
    printable ASCII without whitespace, at most `max_length` characters."""
    if (
        not isinstance(value, str)
        or not value
        or len(value) > max_length
        or not all("!" <= c <= "~" for c in value)
    ):
        raise BadRequest(
            f"{field} must be a non-empty string without whitespace or control characters"
        )
    return value


def parse_sentry_token(value: object, field: str = "sentry_token") -> str:
    """A Sentry bearer token (§A bind)."""
    return parse_header_token(value, field, MAX_SENTRY_TOKEN_LENGTH)


def parse_strategy(value: object, field: str = "resolution_strategy") -> ResolutionStrategy:
    choices = ", ".join(s.value for s in ResolutionStrategy)
    if not isinstance(value, str):
        raise BadRequest(f"{field} must be one of {choices}")
    try:
        return ResolutionStrategy(value)
    except ValueError:
        raise BadRequest(f"{field} must be one of {choices}") from None


def parse_status_map(value: object, field: str = "status_map") -> dict[str, StatusRule]:
    """`{"<project id>": {"resolve": ["<status id>", ...], "unresolve": [...]}}` (W5)."""
    if not isinstance(value, Mapping):
        raise BadRequest(f"{field} must be an object keyed by Jira project id")
    if len(value) > MAX_STATUS_MAP_PROJECTS:
        raise BadRequest(f"{field} has more than {MAX_STATUS_MAP_PROJECTS} projects")
    rules: dict[str, StatusRule] = {}
    for project_id, rule in value.items():
        if not isinstance(project_id, str) or not DIGITS.fullmatch(project_id):
            raise BadRequest(f"{field} keys must be Jira project ids (strings of digits)")
        where = f"{field}.{project_id}"
        if not isinstance(rule, Mapping):
            raise BadRequest(f"{where} must be an object with resolve / unresolve lists")
        unknown = sorted(str(k) for k in rule if k not in ("resolve", "unresolve"))
        if unknown:
            raise BadRequest(f"{where} has an unknown field; allowed: resolve, unresolve")
        resolve = _status_ids(rule.get("resolve", []), f"{where}.resolve")
        unresolve = _status_ids(rule.get("unresolve", []), f"{where}.unresolve")
        if resolve & unresolve:
            raise BadRequest(f"{where}: a status cannot be in both resolve and unresolve")
        rules[project_id] = StatusRule(resolve=resolve, unresolve=unresolve)
    return rules


def _status_ids(value: object, field: str) -> frozenset[str]:
    if not isinstance(value, list):
        raise BadRequest(f"{field} must be a list of Jira status ids")
    if len(value) > MAX_STATUSES_PER_LIST:
        raise BadRequest(f"{field} has more than {MAX_STATUSES_PER_LIST} statuses")
    return frozenset(parse_digit_string(item, f"{field}[]") for item in value)


def parse_sentry_issue_ids(value: object, field: str = "sentry_issue_ids") -> tuple[str, ...]:
    """A non-empty list of Sentry issue ids; duplicates collapse; sorted numerically."""
    if not isinstance(value, list):
        raise BadRequest(f"{field} must be a list of Sentry issue ids")
    if not value:
        raise BadRequest(f"{field} must not be empty; DELETE the link to remove it")
    if len(value) > MAX_SENTRY_ISSUE_IDS:
        raise BadRequest(f"{field} has more than {MAX_SENTRY_ISSUE_IDS} ids")
    ids = {parse_digit_string(item, f"{field}[]") for item in value}
    return tuple(sorted(ids, key=int))


def json_object(
    value: object, allowed: tuple[str, ...], *, what: str = "the body"
) -> dict[str, Any]:
    """A JSON object whose keys are all in `allowed` (a typo must not pass silently)."""
    if not isinstance(value, Mapping):
        raise BadRequest(f"{what} must be a JSON object")
    for key in value:
        if key not in allowed:
            shown = key if isinstance(key, str) and len(key) <= 64 and key.isprintable() else "?"
            raise BadRequest(f"unknown field {shown!r}; allowed: {', '.join(allowed)}")
    return dict(value)


def required(body: Mapping[str, Any], field: str) -> Any:
    if field not in body:
        raise BadRequest(f"{field} is required")
    return body[field]
