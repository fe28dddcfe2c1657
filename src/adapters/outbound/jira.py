"""The Jira REST API over httpx, signed as an Atlassian Connect app (SPEC "Outbound calls
to Jira", §4.1, S3–S8, W5).

Every call:
- goes only to the tenant's stored `baseUrl`, whose scheme, host and port are checked
  again against `SENTRY_JIRA_JIRA_HOSTS` right before the call (a refused host: nothing
  is sent);
- connects only to addresses the egress guard accepts (`adapters/egress.py`);
- carries `Authorization: JWT <token>`: HS256 with the tenant's shared secret, `iss` =
  app key, `iat` = now, `exp` = `iat + 180`, and the qsh of exactly the raw path and
  query that go on the wire, relative to the path of the tenant's `baseUrl`;
- follows no redirect and has one deadline, `SENTRY_JIRA_HTTP_TIMEOUT_SECONDS`.

Failures become `core.model.errors.Upstream*` with a short fixed reason: Jira's body and the
token never appear in an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterable
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import jwt

from adapters.clock import SystemClock
from adapters.config import Settings
from adapters.outbound.calls import (
    MAX_RETRY_AFTER_SECONDS,
    Answer,
    AnswerTooLarge,
    OutboundError,
    OutboundTimeout,
    exchange,
    is_success,
    parse_retry_after,
)
from adapters.outbound.egress import EgressRefused, GuardedTransport, Resolver
from adapters.outbound.jira_status_cache import StatusCache
from core.connect.qsh import query_string_hash
from core.model.errors import (
    BadRequest,
    UpstreamFailed,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRefused,
    UpstreamTimeout,
)
from core.model.jira import JiraIssueSummary, JiraProject, JiraStatus, JiraUser, JqlSuggestion
from core.model.jira_hosts import check_jira_base_url
from core.model.tenant import Tenant
from ports.clock import Clock

TOKEN_LIFETIME_SECONDS: Final = 180
DEFAULT_RETRY_AFTER: Final = 30  # S8: 30 when Jira gives none
MAX_RETRY_AFTER: Final = MAX_RETRY_AFTER_SECONDS
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


def jira_http_client(settings: Settings, *, resolver: Resolver | None = None) -> httpx.AsyncClient:
    """The one shared client for Jira calls: guarded egress, no redirects, no env proxy."""
    return httpx.AsyncClient(
        transport=GuardedTransport(settings.app.jira_hosts, resolver=resolver),
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


def _users(value: Any) -> list[JiraUser]:
    users = []
    for raw in _array(value):
        item = _object(raw)
        account_id = item.get("accountId")
        if not isinstance(account_id, str) or not account_id:
            continue  # S4: users without accountId are skipped
        email = item.get("emailAddress")
        users.append(
            JiraUser(
                account_id=account_id,
                display_name=_text(item.get("displayName"), default=""),
                email_address=email if isinstance(email, str) and email else None,
            )
        )
    return users


def _identifier(value: Any) -> str:
    # Jira writes ids as strings; accept a bare integer too, never a bool or a float.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _text(value)


class HttpJiraApi:
    """`ports.jira.JiraApi` over an httpx client built by `jira_http_client`."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        settings: Settings,
        *,
        clock: Clock | None = None,
        status_cache: StatusCache | None = None,
    ) -> None:
        self._client = client
        self._settings = settings
        self._clock = clock or SystemClock()
        self._statuses = status_cache or StatusCache(self._clock)

    async def get_issue(self, tenant: Tenant, key: str) -> JiraIssueSummary | None:
        answer = await self._get(
            tenant,
            f"/rest/api/3/issue/{quote(key, safe='')}",
            [("fields", "summary")],
            absent_on=(404,),
        )
        return None if isinstance(answer, _Absent) else _issue(answer)

    async def search_issues(
        self, tenant: Tenant, jql: str, max_results: int = 20
    ) -> list[JiraIssueSummary]:
        answer = await self._get(
            tenant,
            "/rest/api/3/search/jql",
            [("jql", jql), ("fields", "summary"), ("maxResults", str(max_results))],
        )
        return [_issue(item) for item in _array(_object(answer).get("issues"))]

    async def assignable_users(self, tenant: Tenant, project: str, query: str) -> list[JiraUser]:
        answer = await self._get(
            tenant,
            "/rest/api/3/user/assignable/search",
            [("project", project), ("query", query)],
        )
        return _users(answer)

    async def users(self, tenant: Tenant, query: str) -> list[JiraUser]:
        answer = await self._get(tenant, "/rest/api/3/user/search", [("query", query)])
        return _users(answer)

    async def projects(self, tenant: Tenant, query: str) -> list[JiraProject]:
        answer = await self._get(tenant, "/rest/api/3/project/search", [("query", query)])
        projects = []
        for raw in _array(_object(answer).get("values")):
            item = _object(raw)
            projects.append(
                JiraProject(
                    id=_identifier(item.get("id")),
                    key=_text(item.get("key")),
                    name=_text(item.get("name"), default=""),
                )
            )
        return projects

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
        cached = self._statuses.get(tenant)
        if cached is not None:
            return cached
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
        self._statuses.put(tenant, statuses)
        return statuses

    async def user_email(self, tenant: Tenant, account_id: str) -> str | None:
        answer = await self._get(
            tenant,
            "/rest/api/3/user/email",
            [("accountId", account_id)],
            absent_on=(403, 404),  # W5: the address is hidden, not a failure
        )
        if isinstance(answer, _Absent):
            return None
        email = _object(answer).get("email")
        if email is None or email == "":
            return None
        return _text(email)

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
        try:
            origin = check_jira_base_url(
                urlunsplit((parts.scheme, parts.netloc, "", "", "")), self._settings.app.jira_hosts
            )
        except BadRequest:
            raise refused from None
        return origin, base_path

    async def _get(
        self,
        tenant: Tenant,
        path: str,
        params: list[tuple[str, str]],
        *,
        absent_on: tuple[int, ...] = (),
    ) -> Any:
        secret = tenant.shared_secret
        if not tenant.is_installed or not secret:
            raise UpstreamRefused("the tenant is not installed: no shared secret to sign with")
        origin, base_path = self._site(tenant)
        query = encode_query(params)
        url = f"{origin}{base_path}{path}" + (f"?{query}" if query else "")
        auth = ConnectJwtAuth(
            app_key=self._settings.app.app_key,
            shared_secret=secret,
            base_path=base_path,
            clock=self._clock,
        )
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
        self._raise_for_status(answer)
        return _parse_json(answer)

    def _raise_for_status(self, response: Answer) -> None:
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
            raise UpstreamRefused(f"Jira refused the app's credentials ({status})")
        if status == 404:
            raise UpstreamNotFound("Jira answered 404")
        if 300 <= status < 400:
            raise UpstreamFailed(
                f"Jira answered a redirect ({status}), not followed", status=status
            )
        raise UpstreamFailed(f"Jira answered {status}", status=status)


def _parse_json(response: Answer) -> Any:
    body = response.body
    media_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if not _JSON_TYPE.match(media_type):
        raise UpstreamFailed(
            "Jira answered with something other than JSON", status=response.status
        )
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise UpstreamFailed(
            "Jira answered with invalid JSON", status=response.status
        ) from None
