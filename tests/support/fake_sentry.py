"""A fake Sentry web API on 127.0.0.1, for the httpx adapter, the worker and end-to-end tests.

It serves exactly the W8 routes, and checks what a real Sentry would check:

    PUT /api/0/organizations/{org}/issues/{id}/     one of the six W8 bodies
    GET /api/0/organizations/{org}/issues/{id}/     {"id", "status", "statusDetails", "assignedTo"}
    GET /api/0/organizations/{org}/members/?query=email:<address>
    GET /api/0/organizations/{org}/                 {"id", "slug", "name"} (§10 bind check)

The issue answer also carries `shortId`, `title` and `permalink` (§10 glance).

Usage::

    with FakeSentry() as sentry:                      # a thread, a free port
        sentry.add_org("acme", token="sntrys_acme")   # each org has its bearer token
        sentry.add_issue("acme", "4711")              # status "unresolved", unassigned
        sentry.add_member("acme", "42", [("grace@example.com", True)])
        sentry.add_org("bare", token="t", has_releases=False)  # release resolves → 400
        sentry.fail("PUT", FakeSentry.issue_path("acme", "4711"), 503, times=2)
        sentry.fail("PUT", ..., 429, retry_after=7)
        sentry.hang("GET", ..., seconds=2)            # answers late (released by stop())
        sentry.script("GET", path, Answer(drop=True)) # any sequence of scripted answers
        ...  # point a Binding at sentry.url
        sentry.issue("acme", "4711").status           # end state
        sentry.requests                               # every request: method, path, query,
                                                      # JSON body, Authorization header

A hung request is answered normally when its hang ends (a PUT is then applied, as a real
Sentry may apply a write its client already gave up on), unless stop() comes first.

Order of checks: scripted answer (consumed in order, per method and path; the request is
recorded but nothing changes) → route (404) → org known (404) → bearer token of that org
(401) → body (400: not one of the W8 bodies, a release-based resolve in an org without
releases, an assignee who is not a member) → issue known (404) → 200.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ISSUE_ROUTE = re.compile(r"^/api/0/organizations/([^/]+)/issues/([^/]+)/$")
MEMBERS_ROUTE = re.compile(r"^/api/0/organizations/([^/]+)/members/$")
ORG_ROUTE = re.compile(r"^/api/0/organizations/([^/]+)/$")

STATUS_BODIES: list[dict[str, Any]] = [
    {"status": "resolved"},
    {"status": "resolved", "statusDetails": {"inRelease": "latest"}},
    {"status": "resolved", "statusDetails": {"inNextRelease": True}},
    {"status": "unresolved"},
]


@dataclass(frozen=True)
class Answer:
    """A scripted answer. `hang` waits that many seconds first; `drop` closes the connection
    without answering; status, body and headers are sent as they are."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0
    drop: bool = False

    @property
    def passes_through(self) -> bool:
        """An answer with the default status, body and headers lets the fake answer normally
        (after the hang): `Answer(hang=2)` is a slow Sentry, not a broken one."""
        return self.status == 200 and self.body is None and not self.headers


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    json: Any
    authorization: str | None


@dataclass
class FakeIssue:
    status: str = "unresolved"
    status_details: dict[str, Any] = field(default_factory=dict)
    assigned_to: str | None = None  # a Sentry user id
    title: str = "An error"
    short_id: str | None = None  # None: `<ORG>-<id>`


@dataclass
class _Org:
    token: str
    has_releases: bool = True
    issues: dict[str, FakeIssue] = field(default_factory=dict)
    members: list[dict[str, Any]] = field(default_factory=list)


class FakeSentry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._orgs: dict[str, _Org] = {}
        self._scripts: dict[tuple[str, str], list[Answer]] = {}
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> FakeSentry:
        server = _Server(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeSentry:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL, as a binding's `sentry_url` (no trailing slash)."""
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- arrange

    def add_org(self, org: str, token: str, *, has_releases: bool = True) -> None:
        with self._lock:
            self._orgs[org] = _Org(token=token, has_releases=has_releases)

    def add_issue(
        self,
        org: str,
        issue_id: str,
        *,
        status: str = "unresolved",
        assigned_to: str | None = None,
        title: str = "An error",
        short_id: str | None = None,
    ) -> None:
        with self._lock:
            self._orgs[org].issues[issue_id] = FakeIssue(
                status=status, assigned_to=assigned_to, title=title, short_id=short_id
            )

    def add_member(self, org: str, user_id: str, emails: Iterable[tuple[str, bool]]) -> None:
        """A member who is a user; `emails` are (address, is_verified)."""
        emails = list(emails)
        primary = emails[0][0] if emails else None
        with self._lock:
            self._orgs[org].members.append(
                {
                    "id": str(1000 + len(self._orgs[org].members)),
                    "email": primary,
                    "role": "member",
                    "pending": False,
                    "user": {
                        "id": user_id,
                        "email": primary,
                        "emails": [
                            {"id": str(n), "email": e, "is_verified": v}
                            for n, (e, v) in enumerate(emails, 1)
                        ],
                    },
                }
            )

    def add_invite(self, org: str, email: str) -> None:
        """A pending invitation: a member without a user (no one to assign)."""
        with self._lock:
            self._orgs[org].members.append(
                {"id": "9999", "email": email, "pending": True, "user": None}
            )

    def script(self, method: str, path: str, *answers: Answer) -> None:
        """The next requests of `method` to `path` get these answers, in order; then the normal
        behaviour resumes."""
        with self._lock:
            self._scripts.setdefault((method.upper(), path), []).extend(answers)

    def fail(
        self, method: str, path: str, status: int, *, times: int = 1, retry_after: int | None = None
    ) -> None:
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        body = {"detail": f"scripted {status}"}
        self.script(method, path, *[Answer(status, body, headers) for _ in range(times)])

    def hang(self, method: str, path: str, seconds: float, *, times: int = 1) -> None:
        self.script(method, path, *[Answer(hang=seconds) for _ in range(times)])

    @staticmethod
    def issue_path(org: str, issue_id: str) -> str:
        return f"/api/0/organizations/{org}/issues/{issue_id}/"

    @staticmethod
    def org_path(org: str) -> str:
        return f"/api/0/organizations/{org}/"

    @staticmethod
    def members_path(org: str) -> str:
        return f"/api/0/organizations/{org}/members/"

    # -- assert

    def issue(self, org: str, issue_id: str) -> FakeIssue:
        with self._lock:
            issue = self._orgs[org].issues[issue_id]
            return FakeIssue(issue.status, dict(issue.status_details), issue.assigned_to)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method.upper() and r.path == path]

    # -- serving (runs on the server's threads)

    def _record(self, request: RecordedRequest) -> Answer | None:
        with self._lock:
            self._requests.append(request)
            queue = self._scripts.get((request.method, request.path))
            return queue.pop(0) if queue else None

    def _answer(self, request: RecordedRequest) -> tuple[int, Any]:
        issue_match = ISSUE_ROUTE.match(request.path)
        members_match = MEMBERS_ROUTE.match(request.path)
        org_match = ORG_ROUTE.match(request.path)
        if issue_match and request.method in ("GET", "PUT"):
            slug, issue_id = issue_match.groups()
        elif members_match and request.method == "GET":
            slug, issue_id = members_match.group(1), None
        elif org_match and request.method == "GET":
            slug, issue_id = org_match.group(1), ""
        else:
            return 404, {"detail": "The requested resource does not exist"}
        with self._lock:
            org = self._orgs.get(slug)
            if org is None:
                return 404, {"detail": "The requested resource does not exist"}
            if request.authorization is None:
                return 401, {"detail": "Authentication credentials were not provided."}
            if request.authorization != f"Bearer {org.token}":
                return 401, {"detail": "Invalid token"}
            if issue_id == "":
                return 200, {"id": "1", "slug": slug, "name": slug.title()}
            if issue_id is None:
                return self._members(org, request)
            if request.method == "PUT":
                return self._update(org, issue_id, request.json)
            issue = org.issues.get(issue_id)
            if issue is None:
                return 404, {"detail": "The requested resource does not exist"}
            return 200, _issue_json(issue_id, issue, slug, self.url)

    def _members(self, org: _Org, request: RecordedRequest) -> tuple[int, Any]:
        query = request.query.get("query", [])
        if len(query) != 1 or not query[0].startswith("email:"):
            return 400, {"detail": "this fake only answers query=email:<address>"}
        wanted = query[0].removeprefix("email:").lower()

        def matches(member: dict[str, Any]) -> bool:
            user = member.get("user") or {}
            addresses = [member.get("email") or ""] + [e["email"] for e in user.get("emails", [])]
            return any(a.lower() == wanted for a in addresses)

        return 200, [m for m in org.members if matches(m)]

    def _update(self, org: _Org, issue_id: str, body: Any) -> tuple[int, Any]:
        if body in STATUS_BODIES:
            if "statusDetails" in body and not org.has_releases:
                return 400, {"detail": "No release data present in the system."}
            issue = org.issues.get(issue_id)
            if issue is None:
                return 404, {"detail": "The requested resource does not exist"}
            issue.status = body["status"]
            issue.status_details = dict(body.get("statusDetails", {}))
            return 200, {"status": issue.status, "statusDetails": issue.status_details}
        if isinstance(body, dict) and list(body) == ["assignedTo"]:
            target = body["assignedTo"]
            user_id: str | None = None
            if target is not None:
                ids = {m["user"]["id"] for m in org.members if m.get("user")}
                if not (
                    isinstance(target, str)
                    and target.removeprefix("user:") in ids
                    and target.startswith("user:")
                ):
                    return 400, {"detail": "Cannot assign to non-team member"}
                user_id = target.removeprefix("user:")
            issue = org.issues.get(issue_id)
            if issue is None:
                return 404, {"detail": "The requested resource does not exist"}
            issue.assigned_to = user_id
            return 200, {"assignedTo": _assigned_json(user_id)}
        return 400, {"detail": "not a W8 body"}


def _assigned_json(user_id: str | None) -> dict[str, Any] | None:
    return None if user_id is None else {"type": "user", "id": user_id}


def _issue_json(issue_id: str, issue: FakeIssue, org: str, base: str) -> dict[str, Any]:
    return {
        "id": issue_id,
        "shortId": issue.short_id or f"{org.upper()}-{issue_id}",
        "title": issue.title,
        "permalink": f"{base}/organizations/{org}/issues/{issue_id}/",
        "status": issue.status,
        "statusDetails": issue.status_details,
        "assignedTo": _assigned_json(issue.assigned_to),
    }


def _handler_for(fake: FakeSentry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without TCP_NODELAY the body waits
        # for the client's delayed ACK (~40 ms per keep-alive request).
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            self._serve()

        def do_PUT(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the test output shows failures, not traffic

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = {"__invalid_json__": raw.decode("utf-8", "replace")}
            request = RecordedRequest(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                json=body,
                authorization=self.headers.get("Authorization"),
            )
            scripted = fake._record(request)
            if scripted is not None:
                if scripted.hang and fake._stopping.wait(scripted.hang):
                    self.close_connection = True  # stop() releases a hanging answer
                    return
                if scripted.drop:
                    self.close_connection = True
                    return
                if not scripted.passes_through:
                    self._send(scripted.status, scripted.body, scripted.headers)
                    return
            status, answer = fake._answer(request)
            self._send(status, answer, {})

        def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                self.close_connection = True  # the client gave up (a timeout test)

    return Handler


class _Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: the worker opens up to 32 connections to one
    # Sentry at once, and connects beyond the backlog would stall for a SYN retry (a real
    # Sentry's backlog is far larger), turning a fast fake into a "could not reach Sentry".
    request_queue_size = 128
