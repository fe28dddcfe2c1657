"""The Jira REST API over httpx, for every transport (SPEC "Outbound calls to Jira", §4.1,
§8.0, §8.1, S3–S8, W5).

Every call:
- goes only to the tenant's stored `baseUrl` (a Data Center one may carry a context path),
  whose scheme, host and port are checked again against `SENTRY_JIRA_JIRA_HOSTS` right
  before the call (a refused host: nothing is sent);
- connects only to addresses the egress guard accepts (`adapters/outbound/egress.py`);
- authenticates with the tenant's credential, chosen call by call:
  - Connect: `Authorization: JWT <token>`, HS256 with the shared secret, `iss` = app key,
    `iat` = now, `exp` = `iat + 180`, and the qsh of exactly the raw path and query that go
    on the wire, relative to the path of the tenant's `baseUrl`;
  - Cloud API token (§8.1): `Authorization: Basic base64(email:api_token)`, REST v3 as Connect;
  - Data Center PAT (§8.1): `Authorization: Bearer <PAT>`, REST v2 paths, users identified by
    `key`, project search filtered here from the full list;
- follows no redirect and has one deadline, `SENTRY_JIRA_HTTP_TIMEOUT_SECONDS`.

Failures become `core.model.errors.Upstream*` with a short fixed reason: Jira's body and the
credential never appear in an error.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Generator, Iterable
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import jwt

from adapters.clock import SystemClock
from adapters.config import Settings
from adapters.outbound.calls import (
    Answer,
    AnswerTooLarge,
    OutboundError,
    OutboundTimeout,
    exchange,
    is_success,
    parse_retry_after,
)
from adapters.outbound.egress import EgressRefused, GuardedTransport, Resolver
from core.connect.qsh import query_string_hash
from core.model.credentials import (
    ApiToken,
    ConnectSecret,
    ForgeSystemToken,
    JiraCredential,
    JiraFlavor,
    PersonalAccessToken,
)
from core.model.errors import (
    BadRequest,
    UpstreamFailed,
    UpstreamNotFound,
    UpstreamNotReady,
    UpstreamRateLimited,
    UpstreamRefused,
    UpstreamTimeout,
)
from core.model.forge import PROPAGATION_SECONDS
from core.model.jira import JiraIssueSummary, JiraProject, JiraStatus, JiraUser, JqlSuggestion
from core.model.jira_hosts import check_jira_base_url
from core.model.tenant import FORGE, Tenant
from ports.clock import Clock
from ports.forge import ForgeSites

TOKEN_LIFETIME_SECONDS: Final = 180
# §8.2: how long to wait for a Forge site's system token / for its permissions to propagate.
FORGE_RETRY_AFTER: Final = 30
DEFAULT_RETRY_AFTER: Final = 30  # S8: 30 when Jira gives none
MAX_RESPONSE_BYTES: Final = 10 * 1024 * 1024

# A tenant baseUrl path (L2 stores none; tolerated for sites served under a context path).
_SAFE_BASE_PATH = re.compile(r"(/(?!\.\.?(?:/|$))[A-Za-z0-9._~-]+)*")
_JSON_TYPE = re.compile(r"^application/([a-z0-9.+-]+\+)?json$")


def connect_token(
    *,
    app_key: str,
    shared_secret: str,
    method: str,
    raw_path: str,
    raw_query: str,
    base_path: str,
    issued_at: int,
) -> str:
    """The Connect JWT for one outgoing request (pure: the caller supplies the time)."""
    claims = {
        "iss": app_key,
        "iat": issued_at,
        "exp": issued_at + TOKEN_LIFETIME_SECONDS,
        "qsh": query_string_hash(method, raw_path, raw_query, base_path),
    }
    # Header written as Atlassian's libraries write it (typ first), so tokens are comparable.
    return jwt.encode(
        claims,
        shared_secret,
        algorithm="HS256",
        headers={"typ": "JWT", "alg": "HS256"},
        sort_headers=False,
    )


class ConnectJwtAuth(httpx.Auth):
    """Signs each request as it is sent: the qsh covers the URL exactly as on the wire."""

    requires_request_body = False
    requires_response_body = False

    def __init__(self, *, app_key: str, shared_secret: str, base_path: str, clock: Clock) -> None:
        self._app_key = app_key
        self._secret = shared_secret
        self._base_path = base_path
        self._clock = clock

    def __repr__(self) -> str:  # never show the secret
        return f"ConnectJwtAuth(app_key={self._app_key!r}, base_path={self._base_path!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raw_path, _, raw_query = request.url.raw_path.partition(b"?")
        token = connect_token(
            app_key=self._app_key,
            shared_secret=self._secret,
            method=request.method,
            raw_path=raw_path.decode("ascii", "surrogateescape"),
            raw_query=raw_query.decode("ascii", "surrogateescape"),
            base_path=self._base_path,
            issued_at=int(self._clock.now().timestamp()),
        )
        request.headers["Authorization"] = f"JWT {token}"
        yield request


class HeaderAuth(httpx.Auth):
    """A fixed `Authorization` header (§8.1 `Basic` API token, `Bearer` PAT)."""

    requires_request_body = False
    requires_response_body = False

    def __init__(self, scheme: str, value: str) -> None:
        self._scheme = scheme
        self._value = value

    def __repr__(self) -> str:  # never show the credential
        return f"HeaderAuth(scheme={self._scheme!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"{self._scheme} {self._value}"
        yield request


def basic_value(email: str, token: str) -> str:
    """§8.1 Cloud: `base64(email:api_token)` of the UTF-8 bytes."""
    return base64.b64encode(f"{email}:{token}".encode()).decode("ascii")


def jira_http_client(settings: Settings, *, resolver: Resolver | None = None) -> httpx.AsyncClient:
    """The one shared client for Jira calls: guarded egress, no redirects, no env proxy."""
    # §8.2: Forge sites are reached at their `apiBaseUrl`: its patterns name targets too.
    patterns = (*settings.app.jira_hosts, *settings.app.forge_api_hosts)
    return httpx.AsyncClient(
        transport=GuardedTransport(patterns, resolver=resolver),
        timeout=httpx.Timeout(settings.http_timeout_seconds),
        follow_redirects=False,
        trust_env=False,
        headers={"Accept-Encoding": "identity"},  # the size cap is on what Jira sends
    )


def retry_after_seconds(value: str | None, now: datetime) -> int:
    """S8: Jira's `Retry-After` (delta seconds or an HTTP date), clamped to 1 s – 1 h."""
    seconds = parse_retry_after(value, now=now)
    return DEFAULT_RETRY_AFTER if seconds is None else max(1, seconds)


def encode_query(params: Iterable[tuple[str, str]]) -> str:
    """A raw query with only A–Z a–z 0–9 - . _ ~ left bare (space → %20), as §4.1 encodes."""
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in params)


class _Absent:
    """Marks an answer a method gives a meaning of its own (404 → None, hidden e-mail)."""


_ABSENT: Final = _Absent()


def _shape() -> UpstreamFailed:
    return UpstreamFailed("Jira's answer has an unexpected shape")


def _text(value: Any, *, default: str | None = None) -> str:
    if value is None and default is not None:
        return default
    if not isinstance(value, str):
        raise _shape()
    return value


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _shape()
    return value


def _array(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _shape()
    return value


def _issue(value: Any) -> JiraIssueSummary:
    item = _object(value)
    fields = _object(item.get("fields", {}))
    return JiraIssueSummary(
        key=_text(item.get("key")), summary=_text(fields.get("summary"), default="")
    )


def user_of(value: Any, flavor: JiraFlavor) -> JiraUser | None:
    """One user as Jira wrote it; None without an identity (S4: skipped). Cloud users are
    their `accountId`; Data Center users their `key` (§8.1), never their mutable `name`."""
    item = _object(value)
    identity = item.get("key" if flavor is JiraFlavor.DATA_CENTER else "accountId")
    if not isinstance(identity, str) or not identity:
        return None
    email = item.get("emailAddress")
    return JiraUser(
        id=identity,
        display_name=_text(item.get("displayName"), default=""),
        email_address=email if isinstance(email, str) and email else None,
    )


def users_of(value: Any, flavor: JiraFlavor) -> list[JiraUser]:
    """S4: a user list; users without an identity are left out."""
    return [user for user in (user_of(raw, flavor) for raw in _array(value)) if user]


def _project(value: Any) -> JiraProject:
    item = _object(value)
    return JiraProject(
        id=_identifier(item.get("id")),
        key=_text(item.get("key")),
        name=_text(item.get("name"), default=""),
    )


def matching_projects(projects: Iterable[JiraProject], query: str) -> list[JiraProject]:
    """S5 on Data Center, which has no project search: the projects whose key or name
    contains `query`, case-insensitively, in Jira's order."""
    needle = query.casefold()
    return [p for p in projects if needle in p.key.casefold() or needle in p.name.casefold()]


def _identifier(value: Any) -> str:
    # Jira writes ids as strings; accept a bare integer too, never a bool or a float.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _text(value)


class HttpJiraApi:
    """`ports.jira.JiraApi` over an httpx client built by `jira_http_client`.

    Statuses are not cached here: the composition root wraps this in
    `jira_status_cache.CachingJiraApi`."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        settings: Settings,
        *,
        clock: Clock | None = None,
        observe: Callable[[str], None] | None = None,
        forge_sites: ForgeSites | None = None,
    ) -> None:
        self._client = client
        self._settings = settings
        self._observe = observe  # §3 metrics: each call's status class or failure
        self._clock = clock or SystemClock()
        # §8.2: where a system token Jira refused (401) is dropped.
        self._forge_sites = forge_sites

    async def get_issue(self, tenant: Tenant, key: str) -> JiraIssueSummary | None:
        answer = await self._get(
            tenant,
            f"{_rest(tenant)}/issue/{quote(key, safe='')}",
            [("fields", "summary")],
            absent_on=(404,),
        )
        return None if isinstance(answer, _Absent) else _issue(answer)

    async def search_issues(
        self, tenant: Tenant, jql: str, max_results: int = 20
    ) -> list[JiraIssueSummary]:
        # Cloud: the enhanced JQL search; Data Center: REST v2 `search` (§8.1).
        path = "/rest/api/2/search" if _is_data_center(tenant) else "/rest/api/3/search/jql"
        answer = await self._get(
            tenant, path, [("jql", jql), ("fields", "summary"), ("maxResults", str(max_results))]
        )
        return [_issue(item) for item in _array(_object(answer).get("issues"))]

    async def assignable_users(self, tenant: Tenant, project: str, query: str) -> list[JiraUser]:
        answer = await self._get(
            tenant,
            f"{_rest(tenant)}/user/assignable/search",
            [("project", project), (_user_query(tenant), query)],
        )
        return users_of(answer, tenant.flavor)

    async def users(self, tenant: Tenant, query: str) -> list[JiraUser]:
        answer = await self._get(
            tenant, f"{_rest(tenant)}/user/search", [(_user_query(tenant), query)]
        )
        return users_of(answer, tenant.flavor)

    async def projects(self, tenant: Tenant, query: str) -> list[JiraProject]:
        if _is_data_center(tenant):  # §8.1: no project search on Data Center
            answer = await self._get(tenant, "/rest/api/2/project", [])
            return matching_projects((_project(raw) for raw in _array(answer)), query)
        answer = await self._get(tenant, "/rest/api/3/project/search", [("query", query)])
        return [_project(raw) for raw in _array(_object(answer).get("values"))]

    async def autocomplete(
        self, tenant: Tenant, field_name: str, field_value: str
    ) -> list[JqlSuggestion]:
        answer = await self._get(
            tenant,
            "/rest/api/2/jql/autocompletedata/suggestions",
            [("fieldName", field_name), ("fieldValue", field_value)],
        )
        suggestions = []
        for raw in _array(_object(answer).get("results")):
            item = _object(raw)
            value = _text(item.get("value"))
            suggestions.append(
                JqlSuggestion(
                    value=value, display_name=_text(item.get("displayName"), default=value)
                )
            )
        return suggestions

    async def statuses(self, tenant: Tenant) -> list[JiraStatus]:
        answer = await self._get(tenant, "/rest/api/2/status", [])
        statuses = []
        for raw in _array(answer):
            item = _object(raw)
            category = _object(item.get("statusCategory"))
            statuses.append(
                JiraStatus(
                    id=_identifier(item.get("id")),
                    name=_text(item.get("name"), default=""),
                    category_key=_text(category.get("key")),
                )
            )
        return statuses

    async def user_email(self, tenant: Tenant, account_id: str) -> str | None:
        credential = tenant.jira_credential
        if isinstance(credential, ConnectSecret | ForgeSystemToken):  # apps: §8.2 too
            path, params, field = "/rest/api/3/user/email", [("accountId", account_id)], "email"
        elif _is_data_center(tenant):
            path, params, field = "/rest/api/2/user", [("key", account_id)], "emailAddress"
        else:  # W5: a Cloud API token may not call /user/email (apps only)
            path, params, field = "/rest/api/3/user", [("accountId", account_id)], "emailAddress"
        answer = await self._get(
            tenant, path, params, absent_on=(403, 404)  # W5: hidden, not a failure
        )
        if isinstance(answer, _Absent):
            return None
        email = _object(answer).get(field)
        if email is None or email == "":
            return None
        return _text(email)

    async def myself(self, tenant: Tenant) -> JiraUser:
        answer = await self._get(tenant, f"{_rest(tenant)}/myself", [])
        user = user_of(answer, tenant.flavor)
        if user is None:
            raise _shape()
        return user

    # -- one call ---------------------------------------------------------------------

    def _site(self, tenant: Tenant) -> tuple[str, str]:
        """(origin, base path) of the tenant's Jira, re-checked against the host patterns."""
        base_url = tenant.base_url
        refused = UpstreamFailed("the tenant's Jira site is not an allowed host")
        if not isinstance(base_url, str) or "?" in base_url or "#" in base_url:
            raise refused
        try:
            parts = urlsplit(base_url)
        except ValueError:
            raise refused from None
        base_path = parts.path.rstrip("/")
        if not _SAFE_BASE_PATH.fullmatch(base_path):
            raise refused
        # §8.2: a Forge site's base URL is its `apiBaseUrl`, under the Forge API hosts.
        patterns = (self._settings.app.forge_api_hosts if tenant.transport == FORGE
                    else self._settings.app.jira_hosts)
        try:
            origin = check_jira_base_url(
                urlunsplit((parts.scheme, parts.netloc, "", "", "")), patterns
            )
        except BadRequest:
            raise refused from None
        return origin, base_path

    def _auth(self, tenant: Tenant, base_path: str) -> httpx.Auth:
        """The tenant's credential as an `Authorization` header (§8.0: per call)."""
        credential: JiraCredential | None = tenant.jira_credential
        if credential is None:
            raise UpstreamRefused("the tenant is not installed: no credential to call Jira with")
        if _is_data_center(tenant) != isinstance(credential, PersonalAccessToken):
            # Connect and API tokens are Cloud's; a PAT is Data Center's (§8.1).
            raise UpstreamRefused("the site's credential does not fit its Jira flavor")
        if isinstance(credential, ConnectSecret):
            return ConnectJwtAuth(
                app_key=self._settings.app.app_key,
                shared_secret=credential.shared_secret,
                base_path=base_path,
                clock=self._clock,
            )
        if isinstance(credential, ApiToken):
            return HeaderAuth("Basic", basic_value(credential.email, credential.token))
        if isinstance(credential, ForgeSystemToken):
            token = credential.token
            if token is None or not token.usable_at(self._clock.now()):
                raise UpstreamNotReady("no unexpired Forge system token for this site yet",
                                       retry_after=FORGE_RETRY_AFTER)
            return HeaderAuth("Bearer", token.token)
        return HeaderAuth("Bearer", credential.token)

    async def _get(
        self,
        tenant: Tenant,
        path: str,
        params: list[tuple[str, str]],
        *,
        absent_on: tuple[int, ...] = (),
    ) -> Any:
        if tenant.jira_credential is None:  # before the host check: nothing to send with
            raise UpstreamRefused("the tenant is not installed: no credential to call Jira with")
        origin, base_path = self._site(tenant)
        auth = self._auth(tenant, base_path)
        query = encode_query(params)
        url = f"{origin}{base_path}{path}" + (f"?{query}" if query else "")
        seconds = self._settings.http_timeout_seconds
        request = self._client.build_request(
            "GET", url, headers={"Accept": "application/json"}, timeout=httpx.Timeout(seconds)
        )
        try:
            answer = await exchange(
                self._client,
                request,
                auth=auth,
                deadline_seconds=seconds,
                max_bytes=MAX_RESPONSE_BYTES,
                read_body=lambda status: status not in absent_on and is_success(status),
                observe=self._observe,
            )
        except OutboundTimeout:
            raise UpstreamTimeout("Jira did not answer in time") from None
        except AnswerTooLarge as error:
            raise UpstreamFailed("Jira's answer is too large", status=error.status) from None
        except EgressRefused:
            raise UpstreamFailed(
                "the tenant's Jira site resolves to an address that is not allowed"
            ) from None
        except OutboundError:
            raise UpstreamFailed("could not reach Jira") from None
        if answer.status in absent_on:
            return _ABSENT
        if answer.status in (401, 403) and tenant.transport == FORGE:
            await self._forge_refused(tenant, answer.status)
        self._raise_for_status(answer, tenant)
        return _parse_json(answer)

    async def _forge_refused(self, tenant: Tenant, status: int) -> None:
        """§8.2: a token Jira refuses with 401 is dropped; 401/403 within 10 minutes of the
        install are transient (permissions propagate)."""
        credential = tenant.jira_credential
        if status == 401 and self._forge_sites is not None \
                and isinstance(credential, ForgeSystemToken) and credential.token is not None:
            await self._forge_sites.drop_system_token(tenant.id, credential.token.token)
        age = (self._clock.now() - tenant.installed_at).total_seconds()
        if age < PROPAGATION_SECONDS:
            raise UpstreamNotReady(
                f"Jira answered {status} within 10 minutes of the install; permissions may "
                "still be propagating", retry_after=FORGE_RETRY_AFTER)

    def _raise_for_status(self, response: Answer, tenant: Tenant) -> None:
        status = response.status
        if 200 <= status < 300:
            return
        if status == 429:
            raise UpstreamRateLimited(
                "Jira is rate-limiting the app",
                retry_after=retry_after_seconds(
                    response.headers.get("Retry-After"), self._clock.now()
                ),
            )
        if status in (401, 403):
            raise UpstreamRefused(_refusal(tenant.jira_credential, status))
        if status == 404:
            raise UpstreamNotFound("Jira answered 404")
        if 300 <= status < 400:
            raise UpstreamFailed(
                f"Jira answered a redirect ({status}), not followed", status=status
            )
        raise UpstreamFailed(f"Jira answered {status}", status=status)


def _is_data_center(tenant: Tenant) -> bool:
    return tenant.flavor is JiraFlavor.DATA_CENTER


def _rest(tenant: Tenant) -> str:
    """The REST root: v3 on Cloud, v2 on Data Center (§8.1)."""
    return "/rest/api/2" if _is_data_center(tenant) else "/rest/api/3"


def _user_query(tenant: Tenant) -> str:
    """Cloud user searches take `query`; Data Center's take `username` (§8.1)."""
    return "username" if _is_data_center(tenant) else "query"


def _refusal(credential: JiraCredential | None, status: int) -> str:
    """§8.1: a refusal that names the problem, never the credential."""
    what = (
        "the API token (check the e-mail and the token)"
        if isinstance(credential, ApiToken)
        else "the personal access token"
        if isinstance(credential, PersonalAccessToken)
        else "the app's credentials"
    )
    if status == 403:
        return f"Jira accepted {what} but denied access ({status}): check its permissions"
    return f"Jira refused {what} ({status})"


def _parse_json(response: Answer) -> Any:
    body = response.body
    media_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if not _JSON_TYPE.match(media_type):
        raise UpstreamFailed(
            "Jira answered with something other than JSON", status=response.status
        )
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # nested too deeply: also invalid
        raise UpstreamFailed(
            "Jira answered with invalid JSON", status=response.status
        ) from None
