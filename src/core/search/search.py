"""search (SPEC S1–S8, L7): the pickers that link a Sentry issue to a Jira issue.

Order of checks (SPEC §5): 401 → 404 → 400 → Jira. Nothing is sent to Jira for a refusal.

- S1 `Authorization: Bearer <token>`, exactly one such header. The token is one of the
  configured admin tokens (every one compared in constant time) or a live search token of
  *the org in the path* (the store compares hashes in constant time). A token of another
  org, a revoked one, any other scheme → 401.
- 404: a tenant id that is not a canonical decimal integer (it names no tenant: the
  parameter is the path, so the 404 comes before the 400s), an unknown tenant, an
  uninstalled one (L7) or one the org is not bound to — one detail for all four, so a
  search token of one org cannot tell other orgs' tenants from absent ones.
- S2 parameters are read from the raw query with repeats kept: `field`, `query` and
  `project` given twice → 400 (which one would Jira get?). Other parameters are ignored.
  `query` is trimmed; empty after trimming counts as missing; longer than 255 characters
  (counted before trimming) or holding control characters → 400. `project`, when given,
  must be a project id (digits) or key; an empty `project` is a 400 too.
- S3 issue keys: `^[A-Za-z][A-Za-z0-9_]*-\\d+$`, or an `http(s)` URL with a host whose path
  ends in `/browse/<KEY>` (one trailing `/` allowed; query and fragment ignored; any host:
  people paste links from the site's display URL as well as its base URL). The key is
  upper-cased; Jira's 404 → `[]`. Anything else is a JQL text search with the query as
  one string literal (`\\` → `\\\\`, then `"` → `\\"`).
- S4 an unknown `project` (Jira answers 404) → `[]`: no user is assignable there. A user's
  value is its `id`: the `accountId` on Cloud, the user `key` on Data Center (§8.1).
- S7 every label is plain text (`core/plain_text.py`); values are Jira's, unchanged.
- S8 upstream failures propagate as `core.model.errors.Upstream*`; the HTTP adapter maps them. An
  answer that cannot be read (too deep, not JSON, wrong shapes) is `UpstreamFailed` too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final
from urllib.parse import urlsplit

import attrs

from core.admin.bindings import matches_admin_token
from core.admin.validation import DIGITS, ORG_SLUG
from core.model.errors import BadRequest, NotFound, Unauthorized, UpstreamFailed, UpstreamNotFound
from core.model.jira import JiraIssueSummary, JiraProject, JiraUser, JqlSuggestion
from core.model.tenant import Tenant
from core.search.plain_text import plain_text
from ports.admin import BindingStore, SearchTokenStore
from ports.jira import JiraApi
from ports.tenants import TenantStore

MAX_QUERY_LENGTH: Final = 255
MAX_PROJECT_LENGTH: Final = 255
MAX_ISSUE_RESULTS: Final = 20
MAX_TENANT_ID: Final = 2**63 - 1  # SQLite's largest integer
# What reading an odd Jira answer may raise below the adapter's own checks.
UNREADABLE_ANSWER: Final = (
    RecursionError, ValueError, TypeError, KeyError, AttributeError, IndexError,
)

FIELD: Final = re.compile(
    r"externalIssue|parent|assignee|reporter|project|customfield_[0-9]+"
    r"|[A-Za-z][A-Za-z0-9_]{0,63}",
    re.ASCII,
)
CUSTOM_FIELD: Final = re.compile(r"customfield_([0-9]+)", re.ASCII)
ISSUE_KEY: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*-[0-9]+", re.ASCII)
PROJECT_ID: Final = re.compile(r"[0-9]+", re.ASCII)
PROJECT_KEY: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*", re.ASCII)
CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")

ISSUE_FIELDS: Final = frozenset({"externalIssue", "parent"})
USER_FIELDS: Final = frozenset({"assignee", "reporter"})

FIELD_REQUIRED: Final = "field is a required parameter"
QUERY_REQUIRED: Final = "query is a required parameter"
NO_SUCH_TENANT: Final = "no such tenant for this org"


@attrs.frozen
class SearchRequest:
    """A search request as received: path segments as strings, every `Authorization`
    header, and the query parameters decoded in order with repeats kept."""

    org: str
    tenant_id: str
    authorization: tuple[str, ...] = attrs.field(repr=False)
    parameters: tuple[tuple[str, str], ...] = ()


@attrs.frozen
class SearchSettings:
    """What search needs from configuration."""

    admin_tokens: tuple[str, ...] = attrs.field(default=(), repr=False)


@attrs.frozen
class SearchQuery:
    """S2: the validated parameters."""

    field: str
    query: str
    project: str | None = None

    @classmethod
    def parse(cls, parameters: Sequence[tuple[str, str]]) -> SearchQuery:
        field = _single(parameters, "field")
        if not field:
            raise BadRequest(FIELD_REQUIRED)
        if not FIELD.fullmatch(field):
            raise BadRequest(
                "field must be externalIssue, parent, assignee, reporter, project, "
                "customfield_<digits> or a Jira field name of at most 64 letters, digits and _"
            )
        raw_query = _single(parameters, "query")
        if raw_query is None or not raw_query.strip():
            raise BadRequest(QUERY_REQUIRED)
        if len(raw_query) > MAX_QUERY_LENGTH:
            raise BadRequest(f"query must be at most {MAX_QUERY_LENGTH} characters")
        if CONTROL.search(raw_query):
            raise BadRequest("query must not contain control characters")
        project = _single(parameters, "project")
        if project is not None and (
            len(project) > MAX_PROJECT_LENGTH
            or not (PROJECT_ID.fullmatch(project) or PROJECT_KEY.fullmatch(project))
        ):
            raise BadRequest("project must be a Jira project id or key")
        return cls(field=field, query=raw_query.strip(), project=project)


@attrs.frozen
class SearchResult:
    """One picker entry: `label` is plain text (S7), `value` is what the picker stores."""

    label: str
    value: str


async def search(
    request: SearchRequest,
    *,
    tenants: TenantStore,
    bindings: BindingStore,
    search_tokens: SearchTokenStore,
    jira: JiraApi,
    settings: SearchSettings,
) -> list[SearchResult]:
    """S1–S8, L7: authenticate, find the tenant bound to the org, validate, ask Jira."""
    await authenticate(request, search_tokens=search_tokens, settings=settings)
    tenant = await bound_tenant(request, tenants=tenants, bindings=bindings)
    query = SearchQuery.parse(request.parameters)
    try:
        return await ask_jira(query, tenant, jira=jira)
    except UNREADABLE_ANSWER as err:
        # S8: an answer nested too deeply, not JSON or of the wrong shape is Jira's failure
        # (502), never a 500, whichever layer noticed it.
        raise UpstreamFailed(f"Jira's answer cannot be read ({type(err).__name__})") from None


async def authenticate(
    request: SearchRequest, *, search_tokens: SearchTokenStore, settings: SearchSettings
) -> None:
    """S1: an admin token, or a live search token of this org; else 401."""
    if len(request.authorization) != 1:
        raise Unauthorized(
            "missing Authorization: Bearer token"
            if not request.authorization
            else "more than one Authorization header"
        )
    scheme, _, presented = request.authorization[0].strip().partition(" ")
    token = presented.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("search takes Authorization: Bearer <token>")
    if is_admin_token(token, settings.admin_tokens):
        return
    # Tokens are issued only for valid org slugs: nothing else can hold one.
    if ORG_SLUG.fullmatch(request.org) and await search_tokens.verify(request.org, token):
        return
    raise Unauthorized("invalid token for this org")


def is_admin_token(token: str, admin_tokens: tuple[str, ...]) -> bool:
    """Constant-time against every configured admin token, whichever matches (digests of
    equal length: see core.admin.bindings.matches_admin_token)."""
    return matches_admin_token(token, admin_tokens)


async def bound_tenant(
    request: SearchRequest, *, tenants: TenantStore, bindings: BindingStore
) -> Tenant:
    """404 unless the tenant exists, is installed (L7) and is bound to the org (S1)."""
    if not DIGITS.fullmatch(request.tenant_id) or int(request.tenant_id) > MAX_TENANT_ID:
        raise NotFound(NO_SUCH_TENANT)
    tenant_id = int(request.tenant_id)
    tenant = await tenants.get(tenant_id)
    # L7, §8.0: a site of any transport that can still call Jira (a Connect secret, or a
    # webhook site's API token / PAT); an uninstalled one has none.
    if tenant is None or not tenant.is_installed:
        raise NotFound(NO_SUCH_TENANT)
    if not ORG_SLUG.fullmatch(request.org) or await bindings.get(tenant_id, request.org) is None:
        raise NotFound(NO_SUCH_TENANT)
    return tenant


async def ask_jira(query: SearchQuery, tenant: Tenant, *, jira: JiraApi) -> list[SearchResult]:
    """S3–S6: one Jira call chosen by the field, its answer turned into picker entries."""
    field, text = query.field, query.query
    if field in ISSUE_FIELDS:
        key = issue_key_in(text)
        if key is not None:
            issue = await jira.get_issue(tenant, key)
            return [] if issue is None else [issue_result(issue)]
        issues = await jira.search_issues(tenant, text_search_jql(text), MAX_ISSUE_RESULTS)
        return [issue_result(issue) for issue in issues]
    if field in USER_FIELDS:
        if query.project is None:
            users = await jira.users(tenant, text)
        else:
            try:
                users = await jira.assignable_users(tenant, query.project, text)
            except UpstreamNotFound:
                return []  # Jira knows no such project: nobody is assignable in it
        return [user_result(user) for user in users if user.id]
    if field == "project":
        return [project_result(project) for project in await jira.projects(tenant, text)]
    suggestions = await jira.autocomplete(tenant, jql_field_name(field), text)
    return [suggestion_result(suggestion) for suggestion in suggestions]


# -- pure decisions ----------------------------------------------------------------------------


def issue_key_in(text: str) -> str | None:
    """S3: the issue key a query names, upper-cased, or None for a text search."""
    if ISSUE_KEY.fullmatch(text):
        return text.upper()
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    segments = parts.path.split("/")
    if segments[-1] == "":  # one trailing slash
        segments.pop()
    if len(segments) >= 2 and segments[-2] == "browse" and ISSUE_KEY.fullmatch(segments[-1]):
        return segments[-1].upper()
    return None


def text_search_jql(text: str) -> str:
    """S3: `text ~ "<q>"` with the query as one JQL string literal."""
    literal = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'text ~ "{literal}"'


def jql_field_name(field: str) -> str:
    """S6: `customfield_N` → `cf[N]` (digits kept as given); other names unchanged."""
    custom = CUSTOM_FIELD.fullmatch(field)
    return f"cf[{custom.group(1)}]" if custom else field


def issue_result(issue: JiraIssueSummary) -> SearchResult:
    label = _label(" ", f"({plain_text(issue.key)})", plain_text(issue.summary))
    return SearchResult(label=label, value=issue.key)


def user_result(user: JiraUser) -> SearchResult:
    label = plain_text(user.display_name)
    if user.email_address:  # S4: no " - …" when the e-mail is hidden
        label = _label(" - ", label, plain_text(user.email_address))
    return SearchResult(label=label, value=user.id)


def project_result(project: JiraProject) -> SearchResult:
    label = _label(" - ", plain_text(project.key), plain_text(project.name))
    return SearchResult(label=label, value=project.id)


def suggestion_result(suggestion: JqlSuggestion) -> SearchResult:
    return SearchResult(label=plain_text(suggestion.display_name), value=suggestion.value)


def _label(separator: str, *parts: str) -> str:
    # Parts are made plain text one by one (an unclosed tag in one cannot swallow the
    # next); an empty part leaves no dangling separator.
    return separator.join(part for part in parts if part)


def _single(parameters: Sequence[tuple[str, str]], name: str) -> str | None:
    values = [value for key, value in parameters if key == name]
    if len(values) > 1:
        raise BadRequest(f"{name} must be given once")
    return values[0] if values else None
