"""A fake Jira: a real HTTP server on 127.0.0.1 that checks every credential it receives.

Usage::

    with FakeJira(app_key=settings.app.app_key) as jira:
        site = jira.add_site("client-1", SECRET)            # or base_path="/jira"
        site.add_issue("ABC-1", "Crash on start")
        tenant = a_tenant(base_url=site.base_url, shared_secret=SECRET)
        ...                                                 # call the httpx adapter
        assert jira.requests[-1].route == "issue"
        site.reply("issue", Reply.rate_limited(retry_after="12"))   # program a failure

What it checks, like Jira does, on every request: `Authorization: JWT <token>`, HS256
with the site's shared secret, `iss` = the expected app key, `iat` / `exp` present and
`exp` in the future (by `clock`, default `time.time`), and `qsh` recomputed from the raw
path and query it received, relative to the site's base path. A bad token gets 401 and
the request is still recorded (with `claims=None`, `verified=False`).

Sites: one server can hold several sites, told apart by base path (longest match at a
segment boundary; `""` matches everything no other site claims). A path no site claims
gets 404. Tenants whose `baseUrl` has no path each need a server of their own.

Routes (relative to the base path) and their canned answers, built from the site's data:

=============  ==========================================================
``issue``         GET /rest/api/3/issue/<KEY>?fields=summary (404 if unknown)
``search``        GET /rest/api/3/search/jql: `jql_results[jql]` → issues
``assignable``    GET /rest/api/3/user/assignable/search?project=&query=
``users``         GET /rest/api/3/user/search?query=
``projects``      GET /rest/api/3/project/search?query=
``autocomplete``  GET /rest/api/2/jql/autocompletedata/suggestions
``statuses``      GET /rest/api/2/status (default: tests/fixtures/jira-status-list.json)
``email``         GET /rest/api/3/user/email?accountId= (404 when unknown)
=============  ==========================================================

Searches match a case-insensitive substring of name / e-mail / key / value, like
`adapters/memory/jira.py`. `site.reply(route, Reply...)` replaces a route's answer
(`times=n` for the next n requests only); `Reply` has constructors for every failure
the adapter must survive: `status(n)`, `rate_limited(retry_after)`, `hang(seconds)`,
`html()`, `invalid_json()`, `redirect(location)`, `json(value)`.
Every connection accepted is counted in `connections` (to prove nothing was opened).

Sites of the `webhook` transport (SPEC §8.1) authenticate with a credential instead of a
Connect token; a wrong or missing one gets 401, is recorded (`verified=False`) and counted in
`refused`. A verified request records who made it in `principal`::

    cloud = jira.add_cloud_token_site("cloud-1", "admin@example.com", API_TOKEN)
    dc = jira.add_data_center_site("dc-1", PAT, base_path="/jira")
    dc.add_data_center_user("JIRAUSER10100", "dee", "Dee", "dee@corp.example", projects=("OPS",))

- Cloud API token: `Authorization: Basic base64(email:api_token)`, REST v3 as above plus
  ``myself`` (GET /rest/api/3/myself, the token's owner) and ``user`` (GET
  /rest/api/3/user?accountId=, 404 when unknown). ``email`` answers 403: that resource is
  for apps only.
- Data Center: `Authorization: Bearer <PAT>`, REST v2 under the same route names:
  ``myself`` /rest/api/2/myself, ``issue`` /rest/api/2/issue/<KEY>?fields=summary,
  ``search`` /rest/api/2/search?jql= (`{"startAt", "maxResults", "total", "issues"}`),
  ``users`` /rest/api/2/user/search?username=, ``assignable``
  /rest/api/2/user/assignable/search?project=<key or id>&username= (400 without `username`),
  ``projects`` /rest/api/2/project (the full list, unfiltered), ``statuses``
  /rest/api/2/status, ``user`` /rest/api/2/user?key= (404 when unknown), ``autocomplete``
  as on Cloud. Users carry `key` and `name`, never `accountId`.

`site.api_tokens` / `site.pats` hold the credentials the site accepts (clear them to revoke).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, unquote

import attrs
import jwt

from core.connect.qsh import query_string_hash
from tests.support.paths import fixture_json

Route = Literal[
    "issue", "search", "assignable", "users", "projects", "autocomplete", "statuses", "email",
    "myself", "user",
]
# How a site authenticates callers: a Connect JWT, a §8.1 credential, or (§8.2) a Forge app
# system token.
SiteAuth = Literal["connect", "api-token", "pat", "forge"]

_ROUTES: dict[str, Route] = {
    "/rest/api/3/search/jql": "search",
    "/rest/api/3/user/assignable/search": "assignable",
    "/rest/api/3/user/search": "users",
    "/rest/api/3/project/search": "projects",
    "/rest/api/2/jql/autocompletedata/suggestions": "autocomplete",
    "/rest/api/2/status": "statuses",
    "/rest/api/3/user/email": "email",
}
_ISSUE_PREFIX = "/rest/api/3/issue/"
# §8.1 Cloud sites with an API token: Connect's v3 routes, plus two only they may call.
_CLOUD_TOKEN_ROUTES: dict[str, Route] = {
    **_ROUTES,
    "/rest/api/3/myself": "myself",
    "/rest/api/3/user": "user",
}
# §8.1 Data Center: REST v2 under the same route names.
_DATA_CENTER_ROUTES: dict[str, Route] = {
    "/rest/api/2/myself": "myself",
    "/rest/api/2/search": "search",
    "/rest/api/2/user/search": "users",
    "/rest/api/2/user/assignable/search": "assignable",
    "/rest/api/2/project": "projects",
    "/rest/api/2/status": "statuses",
    "/rest/api/2/jql/autocompletedata/suggestions": "autocomplete",
    "/rest/api/2/user": "user",
}
_DATA_CENTER_ISSUE_PREFIX = "/rest/api/2/issue/"


@attrs.frozen
class ApiToken:
    """A Jira Cloud API token and the account that owns it (`Basic base64(email:token)`)."""

    email: str
    token: str = attrs.field(repr=False)
    account_id: str
    display_name: str


@attrs.frozen
class PersonalAccessToken:
    """A Data Center personal access token and the user that owns it (`Bearer <PAT>`)."""

    token: str = attrs.field(repr=False)
    key: str
    name: str
    display_name: str
    email: str


@attrs.frozen
class ForgeSystemToken:
    """§8.2: a Forge app system token a site accepts (`Bearer <token>` at its apiBaseUrl)."""

    token: str = attrs.field(repr=False)


@attrs.frozen
class Reply:
    """One programmed answer."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: Mapping[str, str] = attrs.field(factory=dict)
    delay: float = 0.0  # seconds to wait before answering (a hung upstream)

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Reply:
        return cls(status=status, body=json.dumps(value).encode())

    @classmethod
    def status_only(cls, status: int) -> Reply:
        """A Jira-style JSON error body with this status (401, 403, 404, 410, 500, …)."""
        return cls.json({"errorMessages": [f"fake Jira error {status}"], "errors": {}}, status)

    @classmethod
    def rate_limited(cls, retry_after: str | None = None) -> Reply:
        headers = {} if retry_after is None else {"Retry-After": retry_after}
        return cls(status=429, body=b'{"errorMessages":["Rate limit exceeded."]}', headers=headers)

    @classmethod
    def hang(cls, seconds: float) -> Reply:
        """Answer 200 `[]` only after `seconds` (the server's stop cuts the wait short)."""
        return cls(body=b"[]", delay=seconds)

    @classmethod
    def html(cls, status: int = 200) -> Reply:
        page = b"<html><body><h1>Atlassian maintenance</h1><p>secret-ish text</p></body></html>"
        return cls(status=status, body=page, content_type="text/html; charset=utf-8")

    @classmethod
    def invalid_json(cls) -> Reply:
        return cls(body=b'{"issues": [')

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Reply:
        return cls(status=status, content_type=None, headers={"Location": location})


@attrs.frozen
class RecordedRequest:
    """What the server received (headers lower-cased) and what it made of the token."""

    method: str
    raw_path: str
    raw_query: str
    headers: dict[str, str]
    site: str | None  # the client key of the site it was routed to
    route: Route | None
    verified: bool
    claims: dict[str, Any] | None
    status: int
    principal: str | None = None  # §8.1 sites: the e-mail (API token) or user key (PAT)

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.raw_query, keep_blank_values=True)


class FakeJiraSite:
    """One tenant's Jira on a `FakeJira` server: its secret, base path and data."""

    def __init__(
        self,
        server: FakeJira,
        client_key: str,
        shared_secret: str,
        base_path: str,
        *,
        auth: SiteAuth = "connect",
    ):
        self._server = server
        self.auth: SiteAuth = auth
        self.api_tokens: list[ApiToken] = []  # auth "api-token": the credentials accepted
        self.pats: list[PersonalAccessToken] = []  # auth "pat": the credentials accepted
        self.system_tokens: list[str] = []  # auth "forge": the app system tokens accepted
        self.client_key = client_key
        self.shared_secret = shared_secret
        self.base_path = base_path.rstrip("/")
        self.issues: dict[str, str] = {}  # key -> summary
        self.jql_results: dict[str, list[str]] = {}  # exact JQL -> issue keys
        self.users: list[dict[str, Any]] = []  # Jira user JSON
        self.project_members: dict[str, set[str]] = {}  # project id or key -> account ids
        self.projects: list[dict[str, Any]] = []  # Jira project JSON
        self.suggestions: dict[str, list[dict[str, str]]] = {}  # fieldName -> results
        self.statuses: list[dict[str, Any]] = copy.deepcopy(fixture_json("jira-status-list.json"))
        self.emails: dict[str, str] = {}  # account id -> address (absent: 404)
        self._replies: dict[Route, tuple[Reply, int | None]] = {}

    @property
    def base_url(self) -> str:
        return self._server.url + self.base_path

    @property
    def flavor(self) -> Literal["cloud", "data-center"]:
        return "data-center" if self.auth == "pat" else "cloud"

    def _route(self, relative: str) -> Route | None:
        table, prefix = (
            (_DATA_CENTER_ROUTES, _DATA_CENTER_ISSUE_PREFIX)
            if self.auth == "pat"
            else (_CLOUD_TOKEN_ROUTES if self.auth == "api-token" else _ROUTES, _ISSUE_PREFIX)
        )
        route = table.get(relative.rstrip("/") or "/")
        if route is None and relative.startswith(prefix) and "/" not in relative[len(prefix) :]:
            route = "issue"
        return route

    # -- arranging data -----------------------------------------------------------------

    def add_issue(self, key: str, summary: str) -> None:
        self.issues[key] = summary

    def add_user(
        self,
        account_id: str | None,
        display_name: str,
        email: str | None = None,
        projects: tuple[str, ...] = (),
    ) -> None:
        """A user; `email=None` leaves `emailAddress` out (hidden by the user's settings)."""
        user: dict[str, Any] = {"displayName": display_name, "active": True}
        if account_id is not None:
            user["accountId"] = account_id
        if email is not None:
            user["emailAddress"] = email
        self.users.append(user)
        for project in projects:
            self.project_members.setdefault(project, set()).add(account_id or "")

    def add_data_center_user(
        self,
        key: str,
        name: str,
        display_name: str,
        email: str | None = None,
        projects: tuple[str, ...] = (),
    ) -> None:
        """A Data Center user: identified by `key` (and `name`), never an `accountId`."""
        user: dict[str, Any] = {"key": key, "name": name, "displayName": display_name,
                                "active": True}
        if email is not None:
            user["emailAddress"] = email
        self.users.append(user)
        for project in projects:
            self.project_members.setdefault(project, set()).add(key)

    def add_project(self, project_id: str, key: str, name: str) -> None:
        self.projects.append({"id": project_id, "key": key, "name": name})

    def add_suggestion(self, field_name: str, value: str, display_name: str) -> None:
        self.suggestions.setdefault(field_name, []).append(
            {"value": value, "displayName": display_name}
        )

    def reply(self, route: Route, reply: Reply | None, *, times: int | None = None) -> None:
        """Answer `route` with `reply` (the next `times` requests, or until changed)."""
        with self._server.lock:
            if reply is None:
                self._replies.pop(route, None)
            else:
                self._replies[route] = (reply, times)

    # -- answering (server threads) -----------------------------------------------------

    def _programmed(self, route: Route) -> Reply | None:
        with self._server.lock:
            entry = self._replies.get(route)
            if entry is None:
                return None
            reply, times = entry
            if times is not None:
                if times <= 1:
                    del self._replies[route]
                else:
                    self._replies[route] = (reply, times - 1)
            return reply

    def _answer(
        self,
        route: Route,
        path: str,
        query: dict[str, list[str]],
        owner: ApiToken | PersonalAccessToken | None = None,
    ) -> Reply:
        programmed = self._programmed(route)
        if programmed is not None:
            return programmed

        def arg(name: str) -> str:
            return query.get(name, [""])[0]

        if self.auth == "pat" and route != "issue":
            return self._answer_data_center(route, query, owner)
        if route == "myself" and isinstance(owner, ApiToken):
            return Reply.json({"accountId": owner.account_id, "emailAddress": owner.email,
                               "displayName": owner.display_name, "active": True,
                               "accountType": "atlassian"})
        if route == "user":
            if not arg("accountId"):
                return Reply.status_only(400)
            found = [u for u in self.users if u.get("accountId") == arg("accountId")]
            return Reply.json(found[0]) if found else Reply.status_only(404)
        if route == "email" and self.auth == "api-token":
            return Reply.status_only(403)  # /user/email is for apps only (§8.1)
        if route == "issue":
            prefix = _DATA_CENTER_ISSUE_PREFIX if self.auth == "pat" else _ISSUE_PREFIX
            key = unquote(path[len(prefix) :])
            if key not in self.issues or arg("fields") != "summary":
                return Reply.status_only(404)
            return Reply.json(_issue_json(key, self.issues[key]))
        if route == "search":
            limit = int(arg("maxResults") or 50)
            keys = [k for k in self.jql_results.get(arg("jql"), []) if k in self.issues]
            issues = [_issue_json(key, self.issues[key]) for key in keys[:limit]]
            return Reply.json({"issues": issues, "isLast": True})
        if route == "users":
            return Reply.json([u for u in self.users if _user_matches(u, arg("query"))])
        if route == "assignable":
            members = self.project_members.get(arg("project"))
            if members is None:
                return Reply.status_only(404)
            return Reply.json(
                [
                    u
                    for u in self.users
                    if u.get("accountId") in members and _user_matches(u, arg("query"))
                ]
            )
        if route == "projects":
            needle = arg("query").lower()
            values = [
                p
                for p in self.projects
                if needle in p["key"].lower() or needle in p["name"].lower()
            ]
            return Reply.json({"values": values, "total": len(values), "isLast": True})
        if route == "autocomplete":
            needle = arg("fieldValue").lower()
            results = [
                s
                for s in self.suggestions.get(arg("fieldName"), [])
                if needle in s["value"].lower() or needle in s["displayName"].lower()
            ]
            return Reply.json({"results": results})
        if route == "statuses":
            return Reply.json(self.statuses)
        account_id = arg("accountId")
        if account_id not in self.emails:
            return Reply.status_only(404)
        return Reply.json({"accountId": account_id, "email": self.emails[account_id]})

    def _answer_data_center(
        self,
        route: Route,
        query: dict[str, list[str]],
        owner: ApiToken | PersonalAccessToken | None,
    ) -> Reply:
        """REST v2 as Jira Data Center answers it: users by `key`/`name`, no `accountId`."""

        def arg(name: str) -> str:
            return query.get(name, [""])[0]

        if route == "myself" and isinstance(owner, PersonalAccessToken):
            return Reply.json({"key": owner.key, "name": owner.name,
                               "emailAddress": owner.email, "displayName": owner.display_name,
                               "active": True})
        if route == "search":
            limit = int(arg("maxResults") or 50)
            keys = [k for k in self.jql_results.get(arg("jql"), []) if k in self.issues]
            issues = [_issue_json(key, self.issues[key]) for key in keys[:limit]]
            return Reply.json(
                {"startAt": 0, "maxResults": limit, "total": len(keys), "issues": issues}
            )
        if route in ("users", "assignable"):
            if "username" not in query or (route == "assignable" and not arg("project")):
                return Reply.status_only(400)
            members: set[str] | None = None
            if route == "assignable":
                members = self.project_members.get(arg("project"))
                if members is None:
                    return Reply.status_only(404)
            return Reply.json(
                [
                    u
                    for u in self.users
                    if (members is None or u.get("key") in members)
                    and _user_matches(u, arg("username"), ("name", "displayName", "emailAddress"))
                ]
            )
        if route == "user":  # GET /rest/api/2/user?key= (404 when unknown)
            if not arg("key"):
                return Reply.status_only(400)
            found = [u for u in self.users if u.get("key") == arg("key")]
            return Reply.json(found[0]) if found else Reply.status_only(404)
        if route == "projects":
            return Reply.json(list(self.projects))  # the full list: callers filter locally
        if route == "statuses":
            return Reply.json(self.statuses)
        # autocomplete: the same v2 resource as on Cloud
        needle = arg("fieldValue").lower()
        results = [
            s
            for s in self.suggestions.get(arg("fieldName"), [])
            if needle in s["value"].lower() or needle in s["displayName"].lower()
        ]
        return Reply.json({"results": results})


def _issue_json(key: str, summary: str) -> dict[str, Any]:
    return {"id": str(10000 + abs(hash(key)) % 10000), "key": key, "fields": {"summary": summary}}


def _user_matches(
    user: dict[str, Any], query: str, fields: tuple[str, ...] = ("displayName", "emailAddress")
) -> bool:
    needle = query.lower()
    return any(needle in str(user.get(field) or "").lower() for field in fields)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeJira

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (timeout tests) closes the socket under a late reply

    def verify_request(self, request: Any, client_address: Any) -> bool:
        with self.fake.lock:
            self.fake.connections += 1
        return True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY the body waits
    # for the client's delayed ACK (~40 ms per keep-alive request).
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self.server.fake._handle(self)

    do_POST = do_PUT = do_DELETE = do_GET


class FakeJira:
    """The server. Start with `with FakeJira(app_key=...) as jira:` (or start()/stop())."""

    def __init__(self, app_key: str, *, clock: Callable[[], float] = time.time) -> None:
        self.app_key = app_key
        self.clock = clock
        self.lock = threading.Lock()
        self.sites: list[FakeJiraSite] = []
        self.requests: list[RecordedRequest] = []
        self.connections = 0
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeJira:
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(0.02,), name="fake-jira", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes hung replies
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeJira:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "start the server first"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    # -- sites and records --------------------------------------------------------------

    def add_site(self, client_key: str, shared_secret: str, base_path: str = "") -> FakeJiraSite:
        site = FakeJiraSite(self, client_key, shared_secret, base_path)
        with self.lock:
            self.sites.append(site)
        return site

    def add_cloud_token_site(
        self,
        name: str,
        email: str,
        api_token: str,
        *,
        account_id: str = "557058:fake-site-admin",
        display_name: str = "Site Admin",
        base_path: str = "",
    ) -> FakeJiraSite:
        """A Jira Cloud site reached with an API token (§8.1 `cloud`); `name` is recorded as
        the request's `site`."""
        site = FakeJiraSite(self, name, "", base_path, auth="api-token")
        site.api_tokens.append(ApiToken(email, api_token, account_id, display_name))
        with self.lock:
            self.sites.append(site)
        return site

    def add_forge_site(self, name: str, *system_tokens: str,
                       cloud_id: str = "0f2c7e4a-0000-4000-8000-00000000c10d") -> FakeJiraSite:
        """§8.2: a site behind Forge's API gateway, at `<url>/ex/jira/<cloud id>` (its
        `apiBaseUrl`), answering Connect's REST routes to `Bearer <app system token>` only:
        every call is checked against `site.system_tokens` (clear or replace to revoke)."""
        site = FakeJiraSite(self, name, "", f"/ex/jira/{cloud_id}", auth="forge")
        site.system_tokens.extend(system_tokens)
        with self.lock:
            self.sites.append(site)
        return site

    def add_data_center_site(
        self,
        name: str,
        pat: str,
        *,
        key: str = "JIRAUSER10000",
        user_name: str = "admin",
        display_name: str = "Admin",
        email: str = "admin@corp.example",
        base_path: str = "",
    ) -> FakeJiraSite:
        """A Jira Data Center site reached with a personal access token (§8.1 `data-center`),
        often under a context path (`base_path="/jira"`)."""
        site = FakeJiraSite(self, name, "", base_path, auth="pat")
        site.pats.append(PersonalAccessToken(pat, key, user_name, display_name, email))
        with self.lock:
            self.sites.append(site)
        return site

    @property
    def refused(self) -> int:
        """How many requests to a site were refused for their credential (401)."""
        with self.lock:
            return sum(1 for r in self.requests if r.site is not None and not r.verified)

    def requests_to(self, route: Route) -> list[RecordedRequest]:
        with self.lock:
            return [r for r in self.requests if r.route == route]

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
            self.connections = 0

    # -- handling -----------------------------------------------------------------------

    def _site_for(self, raw_path: str) -> FakeJiraSite | None:
        best: FakeJiraSite | None = None
        with self.lock:
            sites = list(self.sites)
        for site in sites:
            base = site.base_path
            if (not base or raw_path == base or raw_path.startswith(base + "/")) and (
                best is None or len(base) > len(best.base_path)
            ):
                best = site
        return best

    def _verify(
        self,
        site: FakeJiraSite,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: dict[str, str],
    ) -> dict[str, Any] | None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "jwt" or not token or " " in token:
            return None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                site.shared_secret,
                algorithms=["HS256"],
                options={
                    "require": ["iss", "iat", "exp", "qsh"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError:
            return None
        expected_qsh = query_string_hash(method, raw_path, raw_query, site.base_path)
        fresh = isinstance(claims["exp"], int) and claims["exp"] > self.clock()
        if claims["iss"] != self.app_key or claims["qsh"] != expected_qsh or not fresh:
            return None
        return claims

    @staticmethod
    def _credential_owner(
        site: FakeJiraSite, headers: dict[str, str]
    ) -> ApiToken | PersonalAccessToken | ForgeSystemToken | None:
        """§8.1: the owner of a valid API token (Basic) or PAT (Bearer), else None."""
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if not value or " " in value:
            return None
        if site.auth == "api-token" and scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            email, colon, token = decoded.partition(":")
            for api_token in list(site.api_tokens):
                if colon and email == api_token.email and hmac.compare_digest(
                    token.encode(), api_token.token.encode()
                ):
                    return api_token
        if site.auth == "pat" and scheme.lower() == "bearer":
            for pat in list(site.pats):
                if hmac.compare_digest(value.encode(), pat.token.encode()):
                    return pat
        if site.auth == "forge" and scheme == "Bearer":
            for system_token in list(site.system_tokens):
                if hmac.compare_digest(value.encode(), system_token.encode()):
                    return ForgeSystemToken(system_token)
        return None

    def _handle(self, handler: _Handler) -> None:
        method = handler.command
        raw_path, _, raw_query = handler.path.partition("?")
        headers = {name.lower(): value for name, value in handler.headers.items()}
        site = self._site_for(raw_path)
        route: Route | None = None
        claims: dict[str, Any] | None = None
        owner: ApiToken | PersonalAccessToken | ForgeSystemToken | None = None
        if site is None:
            reply = Reply.status_only(404)
        else:
            relative = raw_path[len(site.base_path) :] or "/"
            route = site._route(relative)
            if site.auth == "connect":
                claims = self._verify(site, method, raw_path, raw_query, headers)
            else:
                owner = self._credential_owner(site, headers)
            if claims is None and owner is None:
                reply = Reply.status_only(401)
            elif route is None or method != "GET":
                reply = Reply.status_only(404 if route is None else 405)
            else:
                query = parse_qs(raw_query, keep_blank_values=True)
                reply = site._answer(route, relative, query,
                                     None if isinstance(owner, ForgeSystemToken) else owner)
        record = RecordedRequest(
            method=method,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=headers,
            site=None if site is None else site.client_key,
            route=route,
            verified=claims is not None or owner is not None,
            claims=claims,
            status=reply.status,
            principal=(
                owner.email if isinstance(owner, ApiToken)
                else owner.key if isinstance(owner, PersonalAccessToken)
                else "forge-app" if isinstance(owner, ForgeSystemToken) else None
            ),
        )
        with self.lock:
            self.requests.append(record)
        if reply.delay and self._stopping.wait(reply.delay):
            handler.close_connection = True
            return
        handler.send_response(reply.status)
        if reply.content_type is not None:
            handler.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(reply.body)))
        handler.end_headers()
        handler.wfile.write(reply.body)
