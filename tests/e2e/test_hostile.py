"""Hostile inputs against a real `sentry-jira serve` process over real sockets (issue 8).

One server for the module: a fresh database, the install-key server and the fake Jira on
loopback, the default 5 MiB body limit. A tenant is installed through real signed installs
(and re-installed, so an old secret exists), bound to an org, linked and searchable; a
second tenant is installed, bound and uninstalled. Then every refusal of SPEC §4–§5 is sent
over HTTP, and each must answer its exact status with a JSON `{"detail": ...}` body, leave
every table as it was (read through a read-only SQLite connection) and — where the SPEC
says nothing is fetched — leave the key server's and the fake Jira's counters unchanged.
Abuse cases (huge, endless, deep, garbage, slow) follow, each ending with a signed webhook
accepted and `/health` 200. Last, the server log, every response body and the database
files are scanned for every secret and token the suite used.

The in-process suites (`tests/http/`) prove the same rules on the app object; this one
proves them through uvicorn, the real parser and real sockets.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import random
import secrets
import socket
import string
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from core.connect.qsh import query_string_hash
from core.describe import ISSUE_UPDATED_PATH as WEBHOOK
from tests.support.builders import TEST_FERNET_KEY
from tests.support.connect_tokens import (
    INSTALLED,
    UNINSTALLED,
    SigningKey,
    hs256_token,
    lifecycle_claims,
    raw_hs256,
    rs256_token,
    signing_key,
    unsigned_token,
)
from tests.support.engines import SQLITE, Storage, Where, is_postgres, stored_bytes, table_rows
from tests.support.fake_jira import FakeJira, FakeJiraSite
from tests.support.key_server import KeyServer, running_key_server
from tests.support.leak_scan import find_leaks
from tests.support.process import free_port, running_server
from tests.support.raw_http import (
    chunk,
    connect,
    read_response,
    request_head,
    send_until_answered,
)
from tests.support.webhooks import issue_updated_body, webhook_token

pytestmark = pytest.mark.e2e

BASE = "https://sentry-jira.example.com"
APP_KEY = "sentry-jira.example.com.jira"
CLIENT = "hostile-acme-client"
GONE = "hostile-gone-client"
ORG = "acme"
OTHER_ORG = "globex"
ISSUE = "APP-123"  # the issue of the shared webhook fixtures
LIMIT = 5_242_880  # SPEC §3.1 default SENTRY_JIRA_MAX_BODY_BYTES: not lowered here
SEARCH = "/extensions/jira/search"
CONNECT_ROUTES = [INSTALLED, UNINSTALLED, WEBHOOK]


def now() -> int:
    return int(datetime.now(UTC).timestamp())


def random_secret(label: str) -> str:
    return f"{label}-{secrets.token_urlsafe(32)}"


# -- the server and what it protects --------------------------------------------------------


@attrs.define(repr=False)  # a failing assertion must not print the secrets it holds
class Hostile:
    """The running server, its fakes, the real data it holds, and what the suite has seen."""

    url: str
    port: int
    directory: Path
    database: Where  # the SQLite file, or the PostgreSQL URL (§9: the suite runs on both)
    log: Path
    keys: KeyServer
    jira: FakeJira
    site: FakeJiraSite
    client: httpx.Client
    admin_token: str
    shared_secret: str  # the tenant's current secret (after one rotation)
    old_secret: str
    gone_secret: str
    sentry_token: str
    tenant_id: int = 0
    gone_id: int = 0
    search_token: str = ""
    other_org_token: str = ""
    revoked_token: str = ""
    accepted_install: tuple[str, bytes] = ("", b"")  # (token, raw body) of the rotation
    accepted_uninstall: tuple[str, bytes] = ("", b"")  # GONE's uninstall
    secrets: dict[str, str] = attrs.Factory(dict)  # label -> value, for the final scan
    bodies: list[bytes] = attrs.Factory(list)  # every response body the suite received
    statuses: list[int] = attrs.Factory(list)
    deliveries: int = 0

    # -- remembering what must never leak -------------------------------------------------

    def remember(self, label: str, value: str) -> str:
        self.secrets[f"{label} #{len(self.secrets)}"] = value
        return value

    def remember_token(self, token: str) -> str:
        """A JWT the suite sent: the whole token and its signature must never come back."""
        self.remember("token", token)
        signature = token.rsplit(".", 1)[-1]
        if len(signature) >= 32:
            self.remember("token signature", signature)
        return token

    # -- sending --------------------------------------------------------------------------

    def send(
        self,
        method: str,
        path: str,
        *,
        headers: list[tuple[str, str]] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        response = self.client.request(method, path, headers=headers or [], content=content)
        self.bodies.append(response.content)
        self.statuses.append(response.status_code)
        return response

    def admin(self, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = [("Authorization", f"Bearer {self.admin_token}")]
        content = None
        if body is not None:
            headers.append(("Content-Type", "application/json"))
            content = json.dumps(body).encode()
        return self.send(method, path, headers=headers, content=content)

    # -- lifecycle callbacks --------------------------------------------------------------

    def lifecycle_claims(
        self,
        route: str,
        *,
        method: str = "POST",
        query: str = "",
        iss: str = CLIENT,
        **changes: Any,
    ) -> dict[str, Any]:
        claims = lifecycle_claims(
            iss=iss, aud=BASE, now=datetime.now(UTC), method=method, path=route, query=query
        )
        claims["jti"] = secrets.token_hex(8)  # every minted token is distinct
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def lifecycle_token(
        self,
        route: str,
        *,
        kid: str | None = "kid-1",
        key: SigningKey | None = None,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        token = rs256_token(
            self.lifecycle_claims(route, **claims), kid=kid, key=key, headers=headers
        )
        return self.remember_token(token)

    def install_body(self, client_key: str = CLIENT, **changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "key": APP_KEY,
            "clientKey": client_key,
            "sharedSecret": self.remember("attacker secret", random_secret("attacker")),
            "baseUrl": self.site.base_url,
            "displayUrl": "https://jira.acme.example",
            "productType": "jira",
            "eventType": "installed",
        }
        body.update(changes)
        return {k: v for k, v in body.items() if v is not None}

    def uninstall_body(self, client_key: str = CLIENT, **changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"key": APP_KEY, "clientKey": client_key, "eventType": "uninstalled"}
        body.update(changes)
        return {k: v for k, v in body.items() if v is not None}

    def lifecycle_body(self, route: str) -> bytes:
        body = self.install_body() if route == INSTALLED else self.uninstall_body()
        return json.dumps(body).encode()

    def post_lifecycle(
        self,
        route: str,
        body: bytes,
        authorization: str | None,
        *,
        query: str = "",
        content_type: str = "application/json",
    ) -> httpx.Response:
        headers = [("Content-Type", content_type)]
        if authorization is not None:
            headers.append(("Authorization", authorization))
        return self.send(
            "POST", route + (f"?{query}" if query else ""), headers=headers, content=body
        )

    # -- webhooks -------------------------------------------------------------------------

    def webhook_token(
        self, client_key: str = CLIENT, secret: str | None = None, **claims: Any
    ) -> str:
        token = webhook_token(client_key, secret or self.shared_secret, **claims)
        return self.remember_token(token)

    def webhook_headers(self, authorization: str | None) -> list[tuple[str, str]]:
        self.deliveries += 1
        headers = [
            ("Content-Type", "application/json"),
            ("X-Atlassian-Webhook-Identifier", f"hostile-{self.deliveries}"),
        ]
        if authorization is not None:
            headers.append(("Authorization", authorization))
        return headers

    def post_webhook(
        self, headers: list[tuple[str, str]], body: bytes | None = None, query: str = ""
    ) -> httpx.Response:
        raw = body if body is not None else json.dumps(issue_updated_body()).encode()
        return self.send(
            "POST", WEBHOOK + (f"?{query}" if query else ""), headers=headers, content=raw
        )

    def valid_webhook(self) -> httpx.Response:
        return self.post_webhook(self.webhook_headers(f"JWT {self.webhook_token()}"))

    # -- state ----------------------------------------------------------------------------

    def database_env(self) -> dict[str, str]:
        """What a CLI process needs to open this server's database."""
        env = {"SENTRY_JIRA_DATABASE": str(self.database)}
        if is_postgres(self.database):
            env["SENTRY_JIRA_SECRET_KEY"] = TEST_FERNET_KEY
        return env

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, read from outside the server (either engine)."""
        return table_rows(self.database)

    def egress(self) -> tuple[int, int, int]:
        """(key fetches, connections to Jira, requests Jira received)."""
        return self.keys.total_requests, self.jira.connections, len(self.jira.requests)

    def still_serving(self) -> None:
        """After an abuse case: on new connections, a signed webhook is accepted (202) and
        `/health` answers from the database (503 only for the absent worker)."""
        headers = self.webhook_headers(f"JWT {self.webhook_token()}")
        body = json.dumps(issue_updated_body()).encode()
        with httpx.Client(base_url=self.url, timeout=10) as fresh:
            accepted = fresh.post(WEBHOOK, headers=headers, content=body)
            health = fresh.get("/health")
        self.bodies += [accepted.content, health.content]
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["status"] == "accepted"
        # The suite's server runs without a worker (stable table snapshots), so /health
        # reports exactly that, with the database answering: its figures are there.
        assert health.status_code == 503, health.text
        assert health.json()["detail"] == "no sync worker is running"
        assert isinstance(health.json()["queue_depth"], int)


def assert_error(response: httpx.Response, status: int) -> None:
    """The exact status and the SPEC §5 error shape: JSON, `{"detail": "<text>"}` only."""
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str) and body["detail"]


@contextlib.contextmanager
def nothing_stored_nor_sent(h: Hostile, *, key_fetch_allowed: bool = False) -> Iterator[None]:
    """Every table unchanged; no key fetched (unless the SPEC allows it); Jira not called."""
    tables = h.snapshot()
    fetches, jira_connections, jira_requests = h.egress()
    yield
    assert h.snapshot() == tables, "a refused request changed the database"
    if not key_fetch_allowed:
        assert h.keys.total_requests == fetches, "a key was fetched for a refused request"
    assert (h.jira.connections, len(h.jira.requests)) == (jira_connections, jira_requests), (
        "Jira was called for a refused request"
    )


def server_env(directory: Path, keys: KeyServer, admin_token: str,
               storage: Storage = SQLITE) -> dict[str, str]:
    return {
        # SQLite: the key file generated beside; PostgreSQL: the key given (§9 requires it).
        **storage.env(directory),
        "SENTRY_JIRA_BASE_URL": BASE,
        "SENTRY_JIRA_INSTALL_KEYS_URL": keys.url,
        "SENTRY_JIRA_JIRA_HOSTS": "https://*.atlassian.net,http://127.0.0.1:*",
        "SENTRY_JIRA_ADMIN_TOKEN": admin_token,
        "SENTRY_JIRA_HTTP_TIMEOUT_SECONDS": "3",
        # A worker (when there is one) must not change tables between two snapshots.
        "SENTRY_JIRA_WORKER": "off",
    }


def set_up_real_data(h: Hostile) -> None:
    """Signed installs, a rotation, an uninstalled site, a binding, a link, search tokens."""
    first = json.dumps(h.install_body(sharedSecret=h.old_secret)).encode()
    response = h.post_lifecycle(INSTALLED, first, f"JWT {h.lifecycle_token(INSTALLED)}")
    assert response.status_code == 204, response.text
    rotation = json.dumps(h.install_body(sharedSecret=h.shared_secret)).encode()
    token = h.lifecycle_token(INSTALLED)
    assert h.post_lifecycle(INSTALLED, rotation, f"JWT {token}").status_code == 204
    h.accepted_install = (token, rotation)
    gone = json.dumps(
        h.install_body(GONE, sharedSecret=h.gone_secret, baseUrl="https://gone.atlassian.net")
    ).encode()
    gone_token = h.lifecycle_token(INSTALLED, iss=GONE)
    assert h.post_lifecycle(INSTALLED, gone, f"JWT {gone_token}").status_code == 204

    tenants = {t["client_key"]: t for t in h.admin("GET", "/api/tenants").json()}
    h.tenant_id, h.gone_id = tenants[CLIENT]["id"], tenants[GONE]["id"]
    binding = {"sentry_url": "https://sentry.example.com", "sentry_token": h.sentry_token}
    for tenant_id in (h.tenant_id, h.gone_id):
        bound = h.admin("PUT", f"/api/tenants/{tenant_id}/orgs/{ORG}", binding)
        assert bound.status_code == 200, bound.text
    linked = h.admin(
        "PUT",
        f"/api/tenants/{h.tenant_id}/orgs/{ORG}/links/{ISSUE}",
        {"sentry_issue_ids": ["4242"]},
    )
    assert linked.status_code == 200, linked.text

    uninstall = json.dumps(h.uninstall_body(GONE)).encode()
    uninstall_token = h.lifecycle_token(UNINSTALLED, iss=GONE)
    assert h.post_lifecycle(UNINSTALLED, uninstall, f"JWT {uninstall_token}").status_code == 204
    h.accepted_uninstall = (uninstall_token, uninstall)

    def issue_token(org: str) -> tuple[int, str]:
        issued = h.admin("POST", f"/api/orgs/{org}/search-tokens")
        assert issued.status_code == 201, issued.text
        h.bodies.pop()  # the one answer that shows the token (§A: shown once), not a leak
        return issued.json()["id"], h.remember("search token", issued.json()["token"])

    _, h.search_token = issue_token(ORG)
    _, h.other_org_token = issue_token(OTHER_ORG)
    revoked_id, h.revoked_token = issue_token(ORG)
    assert h.admin("DELETE", f"/api/orgs/{ORG}/search-tokens/{revoked_id}").status_code == 204

    assert h.valid_webhook().status_code == 202
    h.site.add_issue(ISSUE, "Crash on start")
    found = h.send(
        "GET",
        f"{SEARCH}/{ORG}/{h.tenant_id}/?field=externalIssue&query={ISSUE}",
        headers=[("Authorization", f"Bearer {h.search_token}")],
    )
    assert found.json() == [{"label": f"({ISSUE}) Crash on start", "value": ISSUE}]
    (received,) = h.jira.requests
    assert received.verified and received.site == CLIENT  # signed with the rotated secret


def leaks(h: Hostile) -> list[str]:
    places = {"server log": h.log.read_bytes()}
    places.update({f"response body {n}": body for n, body in enumerate(h.bodies)})
    places.update(stored_bytes(h.database, h.directory,
                               exclude=(h.directory / "sentry-jira.db.key",)))
    return [f"{leak.secret} in {leak.place}" for leak in find_leaks(h.secrets, places)]


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory, module_storage: Storage) -> Iterator[Hostile]:
    directory = tmp_path_factory.mktemp("hostile")
    admin_token = random_secret("admin")
    with (
        running_key_server() as keys,
        FakeJira(APP_KEY) as jira,
    ):
        keys.serve("kid-1", signing_key().public_pem)
        keys.serve("kid-unfetched", signing_key().public_pem)  # only fetched after body checks
        port = free_port()
        shared_secret = random_secret("shared")
        log = directory / "server.log"
        with (
            running_server(server_env(directory, keys, admin_token, module_storage), port=port,
                           log=log) as (
                url,
                _,
            ),
            httpx.Client(base_url=url, timeout=10, follow_redirects=False) as client,
        ):
            hostile = Hostile(
                url=url,
                port=port,
                directory=directory,
                database=module_storage.where(directory),
                log=log,
                keys=keys,
                jira=jira,
                site=jira.add_site(CLIENT, shared_secret),
                client=client,
                admin_token=admin_token,
                shared_secret=shared_secret,
                old_secret=random_secret("old-shared"),
                gone_secret=random_secret("gone-shared"),
                sentry_token=random_secret("sntrys"),
            )
            for label in (
                "admin_token",
                "shared_secret",
                "old_secret",
                "gone_secret",
                "sentry_token",
            ):
                hostile.remember(label, getattr(hostile, label))
            set_up_real_data(hostile)
            yield hostile
        # The server has stopped and flushed its log: scan everything once more.
        found = leaks(hostile)
        assert found == [], f"secrets in clear after shutdown: {found}"


def test_the_refusal_checks_themselves_see_a_row_a_key_fetch_and_a_jira_call(
    h: Hostile,
) -> None:
    """`nothing_stored_nor_sent` can fail: an accepted delivery, a fetched key, a search."""
    with pytest.raises(AssertionError, match="changed the database"), nothing_stored_nor_sent(h):
        assert h.valid_webhook().status_code == 202
    token = h.lifecycle_token(INSTALLED, kid="kid-for-the-self-test")
    with pytest.raises(AssertionError, match="a key was fetched"), nothing_stored_nor_sent(h):
        assert_error(h.post_lifecycle(INSTALLED, h.lifecycle_body(INSTALLED), f"JWT {token}"), 401)
    search = f"{SEARCH}/{ORG}/{h.tenant_id}/?{GOOD_QUERY}"
    with pytest.raises(AssertionError, match="Jira was called"), nothing_stored_nor_sent(h):
        found = h.send("GET", search, headers=[("Authorization", f"Bearer {h.search_token}")])
        assert found.status_code == 200


# -- §4.2 / §4.3: every lifecycle-token refusal, on both lifecycle routes -----------------


def other_route(route: str) -> str:
    return UNINSTALLED if route == INSTALLED else INSTALLED


Attempt = tuple[str | None, str]  # (Authorization header or None, query string)
TokenCase = tuple[str, bool, Callable[[Hostile, str], Attempt]]


def jwt_header(token: str) -> Attempt:
    return f"JWT {token}", ""


def kid_case(kid: str) -> Callable[[Hostile, str], Attempt]:
    return lambda h, r: jwt_header(h.lifecycle_token(r, kid=kid))


# (name, refused before any key fetch, attempt)
LIFECYCLE_TOKEN_REFUSALS: list[TokenCase] = [
    ("no token", True, lambda h, r: (None, "")),
    ("Bearer", True, lambda h, r: (f"Bearer {h.lifecycle_token(r)}", "")),
    ("malformed", True, lambda h, r: ("JWT not-a-token", "")),
    ("empty", True, lambda h, r: ("JWT", "")),
    (
        "two tokens",
        True,
        lambda h, r: (f"JWT {h.lifecycle_token(r)}, JWT {h.lifecycle_token(r)}", ""),
    ),
    (
        "alg none",
        True,
        lambda h, r: jwt_header(
            unsigned_token(h.lifecycle_claims(r), {"alg": "none", "kid": "kid-1"})
        ),
    ),
    (
        "HS256 with the tenant's shared secret",
        True,
        lambda h, r: jwt_header(
            h.remember_token(
                hs256_token(h.lifecycle_claims(r), h.shared_secret, headers={"kid": "kid-1"})
            )
        ),
    ),
    (
        "HS256 signed with the public PEM",
        True,
        lambda h, r: jwt_header(
            h.remember_token(
                raw_hs256(
                    h.lifecycle_claims(r), signing_key().public_pem.encode(), {"kid": "kid-1"}
                )
            )
        ),
    ),
    ("missing kid", True, lambda h, r: jwt_header(h.lifecycle_token(r, kid=None))),
    ("kid ..", True, kid_case("..")),
    ("kid ../x", True, kid_case("../x")),
    ("kid @evil.example/k", True, kid_case("@evil.example/k")),
    ("kid CR-LF", True, kid_case("k\r\nHost: evil.example")),
    ("kid 10 KB", True, kid_case("k" * 10_240)),
    ("crit", True, lambda h, r: jwt_header(h.lifecycle_token(r, headers={"crit": ["exp"]}))),
    ("jwt query parameter", True, lambda h, r: (None, f"jwt={h.lifecycle_token(r)}")),
    (
        "jwt query parameter beside the header",
        True,
        lambda h, r: (f"JWT {h.lifecycle_token(r)}", f"jwt={h.lifecycle_token(r)}"),
    ),
    ("unknown kid", False, kid_case("kid-nobody-serves")),
    (
        "signed by another key",
        False,
        lambda h, r: jwt_header(h.lifecycle_token(r, key=signing_key("attacker"))),
    ),
    ("wrong aud", False, lambda h, r: jwt_header(h.lifecycle_token(r, aud="https://evil.example"))),
    ("no aud", False, lambda h, r: jwt_header(h.lifecycle_token(r, aud=None))),
    ("iss is another site", False, lambda h, r: jwt_header(h.lifecycle_token(r, iss=GONE))),
    (
        "expired",
        False,
        lambda h, r: jwt_header(h.lifecycle_token(r, iat=now() - 600, exp=now() - 300)),
    ),
    ("future iat", False, lambda h, r: jwt_header(h.lifecycle_token(r, iat=now() + 300))),
    ("missing exp", False, lambda h, r: jwt_header(h.lifecycle_token(r, exp=None))),
    ("missing iat", False, lambda h, r: jwt_header(h.lifecycle_token(r, iat=None))),
    ("missing qsh", False, lambda h, r: jwt_header(h.lifecycle_token(r, qsh=None))),
    (
        "qsh of another path",
        False,
        lambda h, r: jwt_header(
            h.lifecycle_token(r, qsh=query_string_hash("POST", other_route(r), ""))
        ),
    ),
    ("qsh of another method", False, lambda h, r: jwt_header(h.lifecycle_token(r, method="PUT"))),
    ("context-qsh", False, lambda h, r: jwt_header(h.lifecycle_token(r, qsh="context-qsh"))),
    (
        "query parameter added after signing",
        False,
        lambda h, r: (f"JWT {h.lifecycle_token(r)}", "user_id=admin"),
    ),
]


@pytest.mark.parametrize("route", [INSTALLED, UNINSTALLED])
@pytest.mark.parametrize(
    ("name", "before_fetch", "attempt"),
    LIFECYCLE_TOKEN_REFUSALS,
    ids=[case[0] for case in LIFECYCLE_TOKEN_REFUSALS],
)
def test_lifecycle_token_refusals_are_401_and_nothing_is_stored(
    h: Hostile,
    route: str,
    name: str,
    before_fetch: bool,
    attempt: Callable[[Hostile, str], Attempt],
) -> None:
    body = h.lifecycle_body(route)  # a new secret for the tenant, or its uninstall
    authorization, query = attempt(h, route)
    with nothing_stored_nor_sent(h, key_fetch_allowed=not before_fetch):
        response = h.post_lifecycle(route, body, authorization, query=query)
        assert_error(response, 401)


def test_single_use_a_replayed_install_token_with_another_body_is_401(h: Hostile) -> None:
    token, accepted_body = h.accepted_install
    with nothing_stored_nor_sent(h):
        replay = h.post_lifecycle(INSTALLED, h.lifecycle_body(INSTALLED), f"JWT {token}")
        assert_error(replay, 401)
        reformatted = json.dumps(json.loads(accepted_body), indent=1).encode()
        assert_error(h.post_lifecycle(INSTALLED, reformatted, f"JWT {token}"), 401)
        # Jira's own retry (same token, byte-identical body) is 204 and changes nothing.
        assert h.post_lifecycle(INSTALLED, accepted_body, f"JWT {token}").status_code == 204


def test_single_use_a_replayed_uninstall_token_with_another_body_is_401(h: Hostile) -> None:
    token, accepted_body = h.accepted_uninstall
    with nothing_stored_nor_sent(h):
        other = json.dumps(json.loads(accepted_body), separators=(",", ":")).encode() + b" "
        assert_error(h.post_lifecycle(UNINSTALLED, other, f"JWT {token}"), 401)


# -- L1 / L2: bad bodies are 400 before any key is fetched ----------------------------------


def install_json(**changes: Any) -> Callable[[Hostile], bytes]:
    return lambda h: json.dumps(h.install_body(**changes)).encode()


BAD_INSTALL_BODIES: list[tuple[str, Callable[[Hostile], bytes]]] = [
    ("not JSON", lambda h: b"{not json"),
    ("not UTF-8", lambda h: b'{"key": "\xff\xfe"}'),
    ("UTF-8 then a lone continuation byte", lambda h: install_json()(h)[:-1] + b"\x80}"),
    ("not an object", lambda h: b"[]"),
    ("nested 100,000 deep", lambda h: b"[" * 100_000 + b"]" * 100_000),
    ("wrong app key", install_json(key="another.app")),
    ("missing clientKey", install_json(clientKey=None)),
    ("clientKey not a string", install_json(clientKey=42)),
    ("missing sharedSecret", install_json(sharedSecret=None)),
    ("sharedSecret too short", install_json(sharedSecret="short")),
    ("missing baseUrl", install_json(baseUrl=None)),
    ("wrong eventType", install_json(eventType="uninstalled")),
    ("displayUrl javascript", install_json(displayUrl="javascript:alert(1)")),
    # PostgreSQL text holds no NUL (docs/security.md, "Malformed identifiers").
    ("displayUrl holding a NUL", install_json(displayUrl="https://jira.acme.example/\u0000")),
    ("displayUrl holding a control", install_json(displayUrl="https://jira.acme.example/\x1b")),
]

# L2: every kind of refused baseUrl (this server allows https://*.atlassian.net and
# http://127.0.0.1:* only).
REFUSED_BASE_URLS = [
    "http://acme.atlassian.net",
    "https://127.0.0.1",
    "http://127.0.0.2:8080",
    "http://localhost:8080",
    "https://[::1]",
    "http://[::1]:8080",
    "https://169.254.169.254",
    "http://169.254.169.254",
    "http://2130706433",
    "http://127.1",
    "http://0x7f.1",
    "https://evil.example",
    "https://x.atlassian.net.evil.example",
    "https://evil.example/.atlassian.net",
    "https://user:pw@acme.atlassian.net",
    "https://acme.atlassian.net@evil.example",
    "https://acme.atlassian.net/#frag",
    "https://acme.atlassian.net#",
    "https://acme.atlassian.net?x=1",
    "https://acme.atlassian.net?",
    "https://acme.atlassian.net/jira",
    "https://acme.atlassian.net:8443",
    "https://acme.xn--atlassan-xyz.net",
    "https://xn--acm-xla.atlassian.net",
    "https://acmé.atlassian.net",
    "https://acme.atlassian.net.",
    "ftp://acme.atlassian.net",
    "javascript:alert(1)",
    "",
]


def test_the_fresh_kid_is_really_served(h: Hostile) -> None:
    """The 400 tests below sign with `kid-unfetched`: prove the key server would serve it."""
    assert httpx.get(h.keys.url + "/kid-unfetched", timeout=5).status_code == 200
    h.keys.requests.clear()


@pytest.mark.parametrize(
    ("name", "body"), BAD_INSTALL_BODIES, ids=[n for n, _ in BAD_INSTALL_BODIES]
)
def test_L1_bad_install_bodies_are_400_before_any_key_fetch(
    h: Hostile, name: str, body: Callable[[Hostile], bytes]
) -> None:
    token = h.lifecycle_token(INSTALLED, kid="kid-unfetched")
    with nothing_stored_nor_sent(h):
        assert_error(h.post_lifecycle(INSTALLED, body(h), f"JWT {token}"), 400)


@pytest.mark.parametrize("base_url", REFUSED_BASE_URLS)
def test_L2_refused_base_urls_are_400_before_any_key_fetch(h: Hostile, base_url: str) -> None:
    token = h.lifecycle_token(INSTALLED, kid="kid-unfetched")
    body = json.dumps(h.install_body(baseUrl=base_url)).encode()
    with nothing_stored_nor_sent(h):
        assert_error(h.post_lifecycle(INSTALLED, body, f"JWT {token}"), 400)


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        ("wrong eventType", {"eventType": "installed"}),
        ("missing clientKey", {"clientKey": None}),
        ("wrong app key", {"key": "another.app"}),
    ],
)
def test_L5_bad_uninstall_bodies_are_400_before_any_key_fetch(
    h: Hostile, name: str, changes: dict[str, Any]
) -> None:
    token = h.lifecycle_token(UNINSTALLED, kid="kid-unfetched")
    body = json.dumps(h.uninstall_body(**changes)).encode()
    with nothing_stored_nor_sent(h):
        assert_error(h.post_lifecycle(UNINSTALLED, body, f"JWT {token}"), 400)


# -- W1 / L4 / L7: every webhook refusal -----------------------------------------------------


def _rs256_webhook(h: Hostile) -> str:
    claims = {
        "iss": CLIENT,
        "iat": now(),
        "exp": now() + 60,
        "qsh": query_string_hash("POST", WEBHOOK, ""),
    }
    return h.remember_token(rs256_token(claims))


def _hs512_webhook(h: Hostile) -> str:
    claims = {
        "iss": CLIENT,
        "iat": now(),
        "exp": now() + 60,
        "qsh": query_string_hash("POST", WEBHOOK, ""),
    }

    # Signed by hand with the real secret (PyJWT warns that it is short for HS512).
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = (
        b64(json.dumps({"alg": "HS512", "typ": "JWT"}).encode())
        + "."
        + b64(json.dumps(claims).encode())
    )
    mac = hmac.new(h.shared_secret.encode(), signing_input.encode(), hashlib.sha512).digest()
    return h.remember_token(f"{signing_input}.{b64(mac)}")


def _with_header(h: Hostile, header: dict[str, Any]) -> str:
    claims = {
        "iss": CLIENT,
        "iat": now(),
        "exp": now() + 60,
        "qsh": query_string_hash("POST", WEBHOOK, ""),
    }
    return h.remember_token(hs256_token(claims, h.shared_secret, headers=header))


WebhookCase = tuple[str, Callable[[Hostile], tuple[list[tuple[str, str]], str]]]


def auth(value: str | None, query: str = "") -> Callable[[Hostile], Any]:
    """A case sending one Authorization value (a `{token}` placeholder gets a valid token)."""

    def build(h: Hostile) -> tuple[list[tuple[str, str]], str]:
        header = value.replace("{token}", h.webhook_token()) if value else None
        return h.webhook_headers(header), query.replace("{token}", h.webhook_token())

    return build


def token_case(make: Callable[[Hostile], str], query: str = "") -> Callable[[Hostile], Any]:
    return lambda h: (h.webhook_headers(f"JWT {make(h)}"), query)


WEBHOOK_REFUSALS: list[WebhookCase] = [
    ("no token", auth(None)),
    ("Bearer", auth("Bearer {token}")),
    ("malformed", auth("JWT not.a.token")),
    ("empty", auth("JWT")),
    ("two tokens in one header", auth("JWT {token}, JWT {token}")),
    (
        "two Authorization headers",
        lambda h: (
            [
                *h.webhook_headers(f"JWT {h.webhook_token()}"),
                ("Authorization", f"JWT {h.webhook_token()}"),
            ],
            "",
        ),
    ),
    ("unknown iss", token_case(lambda h: h.webhook_token("someone-else"))),
    ("wrong secret", token_case(lambda h: h.webhook_token(secret=random_secret("wrong")))),
    (
        "L4 the secret before the rotation",
        token_case(lambda h: h.webhook_token(secret=h.old_secret)),
    ),
    ("L7 an uninstalled site", token_case(lambda h: h.webhook_token(GONE, h.gone_secret))),
    ("another site's secret", token_case(lambda h: h.webhook_token(GONE, h.shared_secret))),
    ("RS256", token_case(_rs256_webhook)),
    (
        "alg none",
        token_case(
            lambda h: unsigned_token(
                {"iss": CLIENT, "iat": now(), "exp": now() + 60}, {"alg": "none"}
            )
        ),
    ),
    ("HS512", token_case(_hs512_webhook)),
    ("crit", token_case(lambda h: _with_header(h, {"crit": ["exp"]}))),
    ("expired", token_case(lambda h: h.webhook_token(now=now() - 3600))),
    ("future iat", token_case(lambda h: h.webhook_token(now=now() + 3600))),
    ("missing exp", token_case(lambda h: h.webhook_token(exp=None))),
    ("missing iat", token_case(lambda h: h.webhook_token(iat=None))),
    ("missing qsh", token_case(lambda h: h.webhook_token(qsh=None))),
    ("context-qsh", token_case(lambda h: h.webhook_token(qsh="context-qsh"))),
    ("qsh of another path", token_case(lambda h: h.webhook_token(path=INSTALLED))),
    ("qsh of another method", token_case(lambda h: h.webhook_token(method="PUT"))),
    ("jwt query parameter", auth(None, "jwt={token}")),
    ("jwt query parameter beside the header", auth("JWT {token}", "jwt={token}")),
    ("query parameter added after signing", auth("JWT {token}", "user_id=admin")),
]


@pytest.mark.parametrize(("name", "case"), WEBHOOK_REFUSALS, ids=[n for n, _ in WEBHOOK_REFUSALS])
def test_W1_webhook_refusals_are_401_and_nothing_is_recorded(
    h: Hostile, name: str, case: Callable[[Hostile], tuple[list[tuple[str, str]], str]]
) -> None:
    headers, query = case(h)
    with nothing_stored_nor_sent(h):
        assert_error(h.post_webhook(headers, query=query), 401)


def _without(key: str) -> bytes:
    body = issue_updated_body()
    del body["issue"][key]
    return json.dumps(body).encode()


def _fields(value: Any) -> bytes:
    body = issue_updated_body()
    body["issue"]["fields"] = value
    return json.dumps(body).encode()


BAD_WEBHOOK_BODIES: list[tuple[str, bytes]] = [
    ("not JSON", b"{nope"),
    ("empty", b""),
    ("not UTF-8", b'{"webhookEvent": "\xff"}'),
    ("overlong UTF-8 encoding", b'{"webhookEvent": "\xc0\xaf"}'),
    ("UTF-16", json.dumps(issue_updated_body()).encode("utf-16")),
    ("not an object", b"[1, 2]"),
    ("nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000),
    ("objects nested 100,000 deep", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
    ("no issue.key", _without("key")),
    ("no issue.id", _without("id")),
    ("issue.fields null", _fields(None)),
    ("issue.fields a list", _fields([])),
    ("webhookEvent a number", json.dumps(issue_updated_body(webhookEvent=7)).encode()),
]


@pytest.mark.parametrize(
    ("name", "body"), BAD_WEBHOOK_BODIES, ids=[n for n, _ in BAD_WEBHOOK_BODIES]
)
def test_W2_bad_webhook_bodies_are_400_and_nothing_is_recorded(
    h: Hostile, name: str, body: bytes
) -> None:
    headers = h.webhook_headers(f"JWT {h.webhook_token()}")
    with nothing_stored_nor_sent(h):
        assert_error(h.post_webhook(headers, body), 400)


# -- §5 transport: 405, 431, 413, 415 on the Connect routes ---------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("route", CONNECT_ROUTES)
def test_405_with_allow_on_the_connect_routes(h: Hostile, route: str, method: str) -> None:
    # Big headers and a wrong content type too: 405 is the first check.
    headers = [("Content-Type", "text/plain"), ("X-Padding", "p" * 20_000)]
    with nothing_stored_nor_sent(h):
        response = h.send(method, route, headers=headers, content=b"{}")
        assert_error(response, 405)
        assert "POST" in [m.strip() for m in response.headers["allow"].split(",")]


@pytest.mark.parametrize("route", CONNECT_ROUTES)
def test_431_for_request_headers_over_16_KiB(h: Hostile, route: str) -> None:
    headers = [("Content-Type", "text/plain"), *(("X-Padding", "p" * 4000) for _ in range(5))]
    with nothing_stored_nor_sent(h):
        assert_error(h.send("POST", route, headers=headers, content=b"{}"), 431)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonx",
        "text/json",
        "multipart/form-data; boundary=x",
    ],
)
@pytest.mark.parametrize("route", CONNECT_ROUTES)
def test_415_unless_the_body_is_declared_json(
    h: Hostile, route: str, content_type: str | None
) -> None:
    token = h.webhook_token() if route == WEBHOOK else h.lifecycle_token(route)
    headers = [("Authorization", f"JWT {token}")]
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    body = (
        json.dumps(issue_updated_body()).encode() if route == WEBHOOK else h.lifecycle_body(route)
    )
    with nothing_stored_nor_sent(h):
        assert_error(h.send("POST", route, headers=headers, content=body), 415)


def raw_error(
    h: Hostile,
    route: str,
    extra: list[tuple[str, str]],
    first_bytes: bytes,
    *,
    seconds: float = 10.0,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Send a head and the first bytes of a body, then read the answer (never the rest)."""
    deadline = time.monotonic() + seconds
    with contextlib.closing(connect(h.port, timeout=seconds)) as sock:
        sock.sendall(request_head("POST", route, extra) + first_bytes)
        response = read_response(sock, deadline=deadline)
    h.bodies.append(response.body)
    h.statuses.append(response.status)
    return response.status, json.loads(response.body), response.headers


def connect_headers(h: Hostile, route: str) -> list[tuple[str, str]]:
    token = h.webhook_token() if route == WEBHOOK else h.lifecycle_token(route)
    return [
        ("Content-Type", "application/json"),
        ("Authorization", f"JWT {token}"),
        ("X-Atlassian-Webhook-Identifier", f"big-{secrets.token_hex(4)}"),
    ]


@pytest.mark.parametrize("route", CONNECT_ROUTES)
def test_413_for_a_declared_length_over_the_limit_before_the_body_is_sent(
    h: Hostile, route: str
) -> None:
    headers = [*connect_headers(h, route), ("Content-Length", str(LIMIT + 1))]
    with nothing_stored_nor_sent(h):
        status, body, response_headers = raw_error(h, route, headers, b"")
    assert (status, set(body)) == (413, {"detail"})
    assert response_headers.get("connection") == "close"


def smuggling_cases(h: Hostile) -> dict[str, bytes]:
    """Requests whose framing is ambiguous; each hides a second, validly signed delivery
    that a server reading the framing the other way would accept and record."""
    body = json.dumps(issue_updated_body()).encode()
    hidden = (
        request_head(
            "POST",
            WEBHOOK,
            [*connect_headers(h, WEBHOOK), ("Content-Length", str(len(body)))],
        )
        + body
    )
    signed = connect_headers(h, WEBHOOK)
    return {
        "Content-Length and Transfer-Encoding": request_head(
            "POST", WEBHOOK, [*signed, ("Content-Length", "5"), ("Transfer-Encoding", "chunked")]
        )
        + b"0\r\n\r\n"
        + hidden,
        "two different Content-Lengths": request_head(
            "POST",
            WEBHOOK,
            [*signed, ("Content-Length", "2"), ("Content-Length", str(2 + len(hidden)))],
        )
        + b"{}"
        + hidden,
        "a negative Content-Length": request_head(
            "POST", WEBHOOK, [*signed, ("Content-Length", "-1")]
        )
        + body,
        "a Content-Length beyond 64 bits": request_head(
            "POST", WEBHOOK, [*signed, ("Content-Length", "9" * 30)]
        )
        + body,
        "an obfuscated Transfer-Encoding": request_head(
            "POST",
            WEBHOOK,
            [
                *signed,
                ("Transfer-Encoding", "chunked, identity"),
                ("Content-Length", str(len(body))),
            ],
        )
        + body,
        "a raw non-ASCII byte in the target": request_head(  # latin-1: one raw 0xFF byte
            "POST", WEBHOOK + "?a=\xff", [*signed, ("Content-Length", str(len(body)))]
        )
        + body,
        "a NUL in a header value": request_head(
            "POST", WEBHOOK, [*signed, ("X-Padding", "a\x00b"), ("Content-Length", str(len(body)))]
        )
        + body,
    }


SMUGGLING = [
    "Content-Length and Transfer-Encoding",
    "two different Content-Lengths",
    "a negative Content-Length",
    "a Content-Length beyond 64 bits",
    "an obfuscated Transfer-Encoding",
    "a raw non-ASCII byte in the target",
    "a NUL in a header value",
]


@pytest.mark.parametrize("name", SMUGGLING)
def test_ambiguous_framing_is_400_from_the_http_parser_and_nothing_is_smuggled(
    h: Hostile, name: str
) -> None:
    """Refused by the HTTP parser before the app runs, still with a JSON error body
    (`adapters/http_parser.py`); the connection is closed, so nothing behind it is read."""
    raw = smuggling_cases(h)[name]
    deadline = time.monotonic() + 10
    with nothing_stored_nor_sent(h), contextlib.closing(connect(h.port)) as sock:
        sock.sendall(raw)
        response = read_response(sock, deadline=deadline)
        h.bodies.append(response.body)
        assert response.status == 400, response
        assert response.headers["content-type"] == "application/json"
        assert json.loads(response.body) == {"detail": "malformed HTTP request"}
        assert response.headers["connection"] == "close"
        with contextlib.suppress(ConnectionError, TimeoutError):
            more = read_response(sock, deadline=time.monotonic() + 0.5)
            pytest.fail(f"a second answer on the same connection: {more}")
    h.still_serving()


# -- search: 401 → 404 → 400, nothing sent to Jira ------------------------------------------


SearchCase = tuple[str, int, Callable[[Hostile], tuple[str, list[tuple[str, str]]]]]
GOOD_QUERY = f"field=externalIssue&query={ISSUE}"


def search_as(
    token: Callable[[Hostile], str | None],
    *,
    org: str = ORG,
    tenant: Callable[[Hostile], str] = lambda h: str(h.tenant_id),
    query: str = GOOD_QUERY,
    scheme: str = "Bearer",
) -> Callable[[Hostile], Any]:
    def build(h: Hostile) -> tuple[str, list[tuple[str, str]]]:
        value = token(h)
        headers = [] if value is None else [("Authorization", f"{scheme} {value}")]
        return f"{SEARCH}/{org}/{tenant(h)}/?{query}", headers

    return build


SEARCH_REFUSALS: list[SearchCase] = [
    ("no token", 401, search_as(lambda h: None)),
    ("wrong token", 401, search_as(lambda h: random_secret("guess"))),
    ("Basic scheme", 401, search_as(lambda h: h.search_token, scheme="Basic")),
    ("JWT scheme", 401, search_as(lambda h: h.search_token, scheme="JWT")),
    ("a webhook JWT", 401, search_as(lambda h: h.webhook_token(), scheme="JWT")),
    ("another org's token", 401, search_as(lambda h: h.other_org_token)),
    ("a revoked token", 401, search_as(lambda h: h.revoked_token)),
    (
        "the token in the query",
        401,
        search_as(lambda h: None, query=GOOD_QUERY + "&token=" + "x" * 20),
    ),
    (
        "two Authorization headers",
        401,
        lambda h: (
            f"{SEARCH}/{ORG}/{h.tenant_id}/?{GOOD_QUERY}",
            [
                ("Authorization", f"Bearer {h.search_token}"),
                ("Authorization", f"Bearer {h.search_token}"),
            ],
        ),
    ),
    ("unknown tenant", 404, search_as(lambda h: h.search_token, tenant=lambda h: "999999")),
    (
        "L7 uninstalled tenant",
        404,
        search_as(lambda h: h.search_token, tenant=lambda h: str(h.gone_id)),
    ),
    ("tenant not bound to the org", 404, search_as(lambda h: h.other_org_token, org=OTHER_ORG)),
    ("admin token, tenant not bound", 404, search_as(lambda h: h.admin_token, org=OTHER_ORG)),
    (
        "tenant id with a leading zero",
        404,
        search_as(lambda h: h.search_token, tenant=lambda h: f"0{h.tenant_id}"),
    ),
    ("tenant id negative", 404, search_as(lambda h: h.search_token, tenant=lambda h: "-1")),
    (
        "tenant id beyond 64 bits",
        404,
        search_as(lambda h: h.search_token, tenant=lambda h: "9" * 30),
    ),
    ("field missing", 400, search_as(lambda h: h.search_token, query=f"query={ISSUE}")),
    ("query missing", 400, search_as(lambda h: h.search_token, query="field=externalIssue")),
    ("query empty", 400, search_as(lambda h: h.search_token, query="field=project&query=")),
    ("query blank", 400, search_as(lambda h: h.search_token, query="field=project&query=+++")),
    (
        "field not allowed",
        400,
        search_as(lambda h: h.search_token, query="field=x%26y%3D1&query=a"),
    ),
    ("field a path", 400, search_as(lambda h: h.search_token, query="field=..%2F&query=a")),
    (
        "query over 255 characters",
        400,
        search_as(lambda h: h.search_token, query="field=project&query=" + "a" * 256),
    ),
    (
        "field twice",
        400,
        search_as(lambda h: h.search_token, query="field=project&field=assignee&query=a"),
    ),
    (
        "query with a newline",
        400,
        search_as(lambda h: h.search_token, query="field=externalIssue&query=a%0Aproject%3DX"),
    ),
    (
        "project not an id or key",
        400,
        search_as(lambda h: h.search_token, query="field=assignee&query=a&project=a%20b"),
    ),
]


@pytest.mark.parametrize(
    ("name", "status", "case"), SEARCH_REFUSALS, ids=[c[0] for c in SEARCH_REFUSALS]
)
def test_S1_S2_search_refusals_send_nothing_to_jira(
    h: Hostile,
    name: str,
    status: int,
    case: Callable[[Hostile], tuple[str, list[tuple[str, str]]]],
) -> None:
    path, headers = case(h)
    with nothing_stored_nor_sent(h):
        assert_error(h.send("GET", path, headers=headers), status)


# -- admin: 401 → 400 → 404 (and 404 for everything when the API is off) -------------------


AdminCase = tuple[str, int, Callable[[Hostile], tuple[str, str, list[tuple[str, str]], bytes]]]


def admin_as(
    method: str,
    path: Callable[[Hostile], str],
    *,
    token: Callable[[Hostile], str | None] = lambda h: h.admin_token,
    body: Any = None,
    raw: bytes | None = None,
    scheme: str = "Bearer",
) -> Callable[[Hostile], Any]:
    def build(h: Hostile) -> tuple[str, str, list[tuple[str, str]], bytes]:
        headers = [("Content-Type", "application/json")]
        value = token(h)
        if value is not None:
            headers.append(("Authorization", f"{scheme} {value}"))
        content = raw if raw is not None else b"" if body is None else json.dumps(body).encode()
        return method, path(h), headers, content

    return build


def tenant_path(suffix: str = "") -> Callable[[Hostile], str]:
    return lambda h: f"/api/tenants/{h.tenant_id}{suffix}"


def a_binding(h: Hostile) -> dict[str, Any]:
    return {
        "sentry_url": "https://sentry.example.com",
        "sentry_token": h.remember("attacker sentry token", random_secret("sntrys")),
    }


ADMIN_REFUSALS: list[AdminCase] = [
    ("no token", 401, admin_as("GET", lambda h: "/api/tenants", token=lambda h: None)),
    (
        "wrong token",
        401,
        admin_as("GET", lambda h: "/api/tenants", token=lambda h: random_secret("guess")),
    ),
    (
        "a search token",
        401,
        admin_as("GET", lambda h: "/api/tenants", token=lambda h: h.search_token),
    ),
    ("Basic scheme", 401, admin_as("GET", lambda h: "/api/tenants", scheme="Basic")),
    ("JWT scheme", 401, admin_as("GET", lambda h: "/api/tenants", scheme="JWT")),
    (
        "the admin token with a suffix",
        401,
        admin_as("GET", lambda h: "/api/tenants", token=lambda h: h.admin_token + "x"),
    ),
    (
        "issue a search token without a token",
        401,
        admin_as("POST", lambda h: f"/api/orgs/{ORG}/search-tokens", token=lambda h: None),
    ),
    (
        "rebind without a token",
        401,
        admin_as(
            "PUT",
            tenant_path(f"/orgs/{ORG}"),
            token=lambda h: None,
            body={"sentry_url": "https://evil.example", "sentry_token": "x" * 20},
        ),
    ),
    (
        "unlink with a wrong token",
        401,
        admin_as(
            "DELETE",
            tenant_path(f"/orgs/{ORG}/links/{ISSUE}"),
            token=lambda h: random_secret("guess"),
        ),
    ),
    ("tenant id not a number", 400, admin_as("GET", lambda h: "/api/tenants/abc")),
    ("tenant id beyond 64 bits", 400, admin_as("GET", lambda h: "/api/tenants/" + "9" * 30)),
    ("org slug invalid", 400, admin_as("GET", tenant_path("/orgs/Acme!"))),
    ("issue key invalid", 400, admin_as("GET", tenant_path(f"/orgs/{ORG}/links/app-1"))),
    (
        "bind: sentry_url not http(s)",
        400,
        admin_as(
            "PUT",
            tenant_path(f"/orgs/{OTHER_ORG}"),
            body={"sentry_url": "ftp://sentry.example.com", "sentry_token": "x" * 20},
        ),
    ),
    (
        "bind: sentry_url with userinfo",
        400,
        admin_as(
            "PUT",
            tenant_path(f"/orgs/{OTHER_ORG}"),
            body={"sentry_url": "https://u:p@sentry.example.com", "sentry_token": "x" * 20},
        ),
    ),
    (
        "bind: unknown strategy",
        400,
        admin_as(
            "PUT", tenant_path(f"/orgs/{ORG}"), body={"resolution_strategy": "delete_everything"}
        ),
    ),
    ("bind: body not JSON", 400, admin_as("PUT", tenant_path(f"/orgs/{ORG}"), raw=b"{nope")),
    (
        "bind: body not UTF-8",
        400,
        admin_as("PUT", tenant_path(f"/orgs/{ORG}"), raw=b'{"sentry_url": "\xff"}'),
    ),
    (
        "bind: body nested 100,000 deep",
        400,
        admin_as("PUT", tenant_path(f"/orgs/{ORG}"), raw=b"[" * 100_000 + b"]" * 100_000),
    ),
    (
        "link: ids not a list",
        400,
        admin_as("PUT", tenant_path(f"/orgs/{ORG}/links/{ISSUE}"), body={"sentry_issue_ids": "1"}),
    ),
    (
        "link: body an array",
        400,
        admin_as("PUT", tenant_path(f"/orgs/{ORG}/links/{ISSUE}"), body=["1"]),
    ),
    ("unknown tenant", 404, admin_as("GET", lambda h: "/api/tenants/999999")),
    (
        "bind an unknown tenant",
        404,
        admin_as(
            "PUT",
            lambda h: f"/api/tenants/999999/orgs/{ORG}",
            body={"sentry_url": "https://sentry.example.com", "sentry_token": "x" * 20},
        ),
    ),
    ("unknown link", 404, admin_as("GET", tenant_path(f"/orgs/{ORG}/links/APP-999"))),
    ("unbind an org never bound", 404, admin_as("DELETE", tenant_path(f"/orgs/{OTHER_ORG}"))),
    (
        "revoke an unknown search token",
        404,
        admin_as("DELETE", lambda h: f"/api/orgs/{ORG}/search-tokens/999999"),
    ),
    ("no such route", 404, admin_as("GET", lambda h: "/api/nothing/here")),
]


@pytest.mark.parametrize(
    ("name", "status", "case"), ADMIN_REFUSALS, ids=[c[0] for c in ADMIN_REFUSALS]
)
def test_A_admin_refusals_change_nothing(
    h: Hostile,
    name: str,
    status: int,
    case: Callable[[Hostile], tuple[str, str, list[tuple[str, str]], bytes]],
) -> None:
    method, path, headers, content = case(h)
    with nothing_stored_nor_sent(h):
        assert_error(h.send(method, path, headers=headers, content=content or None), status)


def test_A_with_no_admin_token_configured_every_admin_route_is_404(
    h: Hostile, tmp_path: Path
) -> None:
    env = server_env(tmp_path, h.keys, h.admin_token)
    del env["SENTRY_JIRA_ADMIN_TOKEN"]
    with running_server(env) as (url, _), httpx.Client(base_url=url, timeout=10) as client:
        for method, path in [
            ("GET", "/api/tenants"),
            ("GET", "/api/tenants/1"),
            ("PUT", f"/api/tenants/1/orgs/{ORG}"),
            ("POST", f"/api/orgs/{ORG}/search-tokens"),
            ("GET", "/api"),
        ]:
            for token in (h.admin_token, None):
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                response = client.request(method, path, headers=headers, json={})
                h.bodies.append(response.content)
                assert_error(response, 404)


# -- abuse: huge, endless, deep, garbage and slow --------------------------------------------


@pytest.mark.parametrize("route", [INSTALLED, WEBHOOK])
def test_abuse_a_10_MB_body_with_a_declared_length_is_413_before_it_is_read(
    h: Hostile, route: str
) -> None:
    headers = [*connect_headers(h, route), ("Content-Length", str(10 * 1024 * 1024))]
    with nothing_stored_nor_sent(h):
        # Only the first 64 KiB are ever sent: the answer must not wait for the rest.
        status, body, response_headers = raw_error(h, route, headers, b"x" * 65_536)
    assert (status, set(body)) == (413, {"detail"})
    assert response_headers.get("connection") == "close"
    h.still_serving()


@pytest.mark.parametrize("route", [INSTALLED, WEBHOOK])
def test_abuse_a_10_MB_chunked_body_is_413_as_soon_as_it_passes_the_limit(
    h: Hostile, route: str
) -> None:
    """The client sends just over the limit of a 10 MB chunked body, then stalls: a server
    that waited for the whole body would never answer (the deadline fails the test)."""
    headers = [*connect_headers(h, route), ("Transfer-Encoding", "chunked")]
    piece = chunk(b"[" * 65_536)
    pieces = [piece] * (LIMIT // 65_536 + 16)  # 6 MiB of the 10 MB; no final chunk, ever
    deadline = time.monotonic() + 20
    with nothing_stored_nor_sent(h), contextlib.closing(connect(h.port, timeout=20)) as sock:
        sock.sendall(request_head("POST", route, headers))
        sent, _ = send_until_answered(sock, pieces, deadline=deadline)
        response = read_response(sock, deadline=deadline)
        h.bodies.append(response.body)
    assert sent < 10 * 1024 * 1024
    assert response.status == 413, response
    assert set(json.loads(response.body)) == {"detail"}
    h.still_serving()


@pytest.mark.parametrize("route", [INSTALLED, WEBHOOK])
def test_abuse_100_000_deep_json_and_invalid_utf8_are_400(h: Hostile, route: str) -> None:
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a": "\xed\xa0\x80"}'):  # an encoded surrogate
        headers = connect_headers(h, route)
        with nothing_stored_nor_sent(h):
            response = h.send("POST", route, headers=headers, content=body)
            assert_error(response, 400)
    h.still_serving()


@pytest.mark.parametrize(
    "target",
    ["installed", "uninstalled", "issue-updated", "search", "admin"],
)
def test_abuse_a_100_KB_authorization_header_is_431_or_401(h: Hostile, target: str) -> None:
    huge = "A" * 100_000
    paths = {
        "installed": ("POST", INSTALLED, "JWT"),
        "uninstalled": ("POST", UNINSTALLED, "JWT"),
        "issue-updated": ("POST", WEBHOOK, "JWT"),
        "search": ("GET", f"{SEARCH}/{ORG}/{h.tenant_id}/?{GOOD_QUERY}", "Bearer"),
        "admin": ("GET", "/api/tenants", "Bearer"),
    }
    method, path, scheme = paths[target]
    headers = [("Content-Type", "application/json"), ("Authorization", f"{scheme} {huge}")]
    with nothing_stored_nor_sent(h):
        response = h.send(
            method,
            path,
            headers=headers,
            content=h.lifecycle_body(INSTALLED) if method == "POST" else None,
        )
        assert response.status_code in (401, 431)
        assert_error(response, response.status_code)
    h.still_serving()


def test_abuse_slow_and_silent_clients_do_not_stop_the_server(h: Hostile) -> None:
    """50 idle sockets, 25 of them stuck half-way through their headers, and one client
    sending its request a byte at a time: a valid request on a new connection is served."""
    head = request_head("POST", WEBHOOK, [("Content-Type", "application/json")])
    idle: list[socket.socket] = []
    try:
        for n in range(50):
            sock = connect(h.port)
            if n % 2:
                sock.sendall(head[: 10 + n])  # part of the request line and headers
            idle.append(sock)
        trickled: list[Any] = []

        def trickle() -> None:
            with contextlib.closing(connect(h.port, timeout=20)) as sock:
                for byte in request_head("GET", "/health", []):
                    sock.sendall(bytes([byte]))
                    time.sleep(0.05)  # about 2 s for the whole request
                trickled.append(read_response(sock, deadline=time.monotonic() + 10))

        slow = threading.Thread(target=trickle, daemon=True)
        slow.start()
        time.sleep(0.1)  # the slow client is mid-way through its request line
        started = time.monotonic()
        h.still_serving()  # new connections, while every socket above hangs
        assert time.monotonic() - started < 10, "a valid request waited on slow clients"
        assert slow.is_alive(), "the slow client should still be sending"
        slow.join(timeout=20)
        assert [r.status for r in trickled] == [503]  # served: /health, no worker here
    finally:
        for sock in idle:
            sock.close()
    h.still_serving()


def garbage_authorizations(count: int, scheme: str, seed: int) -> list[str]:
    """Deterministic junk: random text, JWT-shaped junk, bad schemes, odd spacing, obs-text."""
    rng = random.Random(seed)
    printable = string.ascii_letters + string.digits + string.punctuation + " "
    b64 = string.ascii_letters + string.digits + "-_"

    def segment(size: int) -> str:
        return "".join(rng.choice(b64) for _ in range(size))

    def header(alg: str) -> str:
        raw = json.dumps({"alg": alg, "typ": "JWT", "kid": rng.choice(["..", "a/b", "", "é"])})
        return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()

    makers: list[Callable[[], str]] = [
        lambda: "".join(rng.choice(printable) for _ in range(rng.randint(1, 300))).strip() or "x",
        lambda: f"{scheme} {segment(rng.randint(10, 60))}.{segment(80)}.{segment(43)}",
        lambda: (
            f"{scheme} {header(rng.choice(['none', 'HS256', 'RS256', 'ES256']))}"
            f".{segment(120)}.{segment(rng.choice([0, 43, 342]))}"
        ),
        lambda: (
            f"{rng.choice(['Basic', 'Digest', 'Token', 'jwt', 'bearer', 'JWT', ''])}"
            f"{' ' * rng.randint(0, 3)}{segment(rng.randint(0, 200))}"
        ),
        lambda: (
            f"{scheme} " + ".".join(segment(rng.randint(0, 20)) for _ in range(rng.randint(1, 8)))
        ),
        lambda: f"{scheme} " + "".join(chr(rng.randint(0x80, 0xFF)) for _ in range(40)),
        lambda: f"{scheme} {segment(rng.randint(2000, 8000))}",
    ]
    # Header values never start or end with whitespace on the wire (RFC 9110 §5.5).
    return [rng.choice(makers)().strip(" ") or "x" for _ in range(count)]


def test_abuse_2000_garbage_authorizations_over_keep_alive_are_all_401(h: Hostile) -> None:
    targets = [
        ("POST", INSTALLED, "JWT", h.lifecycle_body(INSTALLED)),
        ("POST", WEBHOOK, "JWT", json.dumps(issue_updated_body()).encode()),
        ("GET", f"{SEARCH}/{ORG}/{h.tenant_id}/?{GOOD_QUERY}", "Bearer", None),
        ("GET", "/api/tenants", "Bearer", None),
    ]
    deadline = time.monotonic() + 60
    answered: dict[int, int] = {}
    with nothing_stored_nor_sent(h):
        for seed, (method, path, scheme, body) in enumerate(targets):
            with httpx.Client(base_url=h.url, timeout=10) as client:  # one keep-alive connection
                for value in garbage_authorizations(500, scheme, seed):
                    assert time.monotonic() < deadline, "2000 requests did not finish in 60 s"
                    headers = [
                        ("Content-Type", "application/json"),
                        ("Authorization", value.encode("latin-1")),
                    ]
                    response = client.request(method, path, headers=headers, content=body)
                    answered[response.status_code] = answered.get(response.status_code, 0) + 1
                    assert response.status_code == 401, (value[:80], response.text[:200])
                    assert set(response.json()) == {"detail"}
                    h.bodies.append(response.content)
    assert answered == {401: 2000}
    h.still_serving()


# -- last: nothing secret anywhere ----------------------------------------------------------


def test_zz_no_secret_or_token_in_the_log_the_responses_or_the_database_files(
    h: Hostile,
) -> None:
    """Runs last in the module (file order): every secret and token the suite used."""
    assert len(h.secrets) > 20  # the suite really collected what it sent
    assert h.keys.fetches("kid-unfetched") == 0  # L1/L2 400s never reached the key fetch
    assert not [s for s in h.statuses if s >= 500], "a request was answered with a 5xx"
    log = h.log.read_text(errors="replace")
    assert "Traceback" not in log and "unhandled" not in log
    assert leaks(h) == []
