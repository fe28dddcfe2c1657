"""The httpx Jira adapter's outbound rules, against the fake Jira server on loopback
(SPEC "Outbound calls to Jira", §4.1, S8)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from adapters.config import Settings
from adapters.memory.clock import FixedClock
from adapters.outbound.egress import Resolver
from adapters.outbound.jira import (
    MAX_RESPONSE_BYTES,
    ConnectJwtAuth,
    HttpJiraApi,
    connect_token,
    encode_query,
    jira_http_client,
)
from adapters.outbound.jira_status_cache import CachingJiraApi
from adapters.wiring import bootstrap
from core.connect.qsh import base_path_of, query_string_hash
from core.model.errors import (
    UpstreamError,
    UpstreamFailed,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRefused,
    UpstreamTimeout,
)
from core.model.jira import JiraUser
from core.model.tenant import Tenant, TenantStatus
from tests.support.builders import a_settings
from tests.support.fake_jira import FakeJira, FakeJiraSite, Reply
from tests.support.paths import SHARED

SECRET = "a-tenant-shared-secret-for-the-security-tests-0123456789"
LOOPBACK = "http://127.0.0.1:*"
VECTORS = json.loads((SHARED / "vectors" / "qsh-modern.json").read_text())
OUTBOUND = [v for v in VECTORS["vectors"] if v.get("name", "").startswith("outbound")]


def a_tenant(base_url: str, secret: str | None = SECRET) -> Tenant:
    return Tenant(
        id=1,
        client_key="client-1",
        base_url=base_url,
        display_url=None,
        status=TenantStatus.INSTALLED,
        installed_at=datetime(2026, 1, 1, tzinfo=UTC),
        shared_secret=secret,
    )


def settings_for(hosts: str = LOOPBACK, timeout: str = "0.5") -> Settings:
    return a_settings(jira_hosts=hosts, http_timeout_seconds=timeout)


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira(settings_for().app.app_key) as server:
        yield server


@pytest.fixture
def site(jira: FakeJira) -> FakeJiraSite:
    site = jira.add_site("client-1", SECRET)
    site.add_issue("ABC-1", "Crash on start")
    return site


@pytest.fixture
async def api() -> AsyncIterator[HttpJiraApi]:
    settings = settings_for()
    async with jira_http_client(settings) as client:
        yield HttpJiraApi(client, settings)


MakeApi = Callable[..., HttpJiraApi]


@pytest.fixture
async def make_api() -> AsyncIterator[MakeApi]:
    """Build adapters with their own settings (and resolver); their clients are closed after."""
    clients: list[httpx.AsyncClient] = []

    def build(settings: Settings, resolver: Resolver | None = None) -> HttpJiraApi:
        client = jira_http_client(settings, resolver=resolver)
        clients.append(client)
        return HttpJiraApi(client, settings)

    yield build
    for client in clients:
        await client.aclose()


def assert_safe(error: UpstreamError, *secrets: str) -> None:
    text = f"{error.detail} {error!r} {error!s}"
    for secret in (SECRET, "fake Jira error", "secret-ish", "<html", *secrets):
        assert secret not in text


# -- signing ------------------------------------------------------------------------


@pytest.mark.parametrize("vector", OUTBOUND, ids=lambda v: v["name"])
def test_outbound_token_matches_the_shared_vector(vector: dict[str, Any]) -> None:
    origin = "https://example.atlassian.net"
    request = httpx.Request(vector["method"], origin + vector["url"])
    auth = ConnectJwtAuth(
        app_key=vector["iss"],
        shared_secret=VECTORS["secret"],
        base_path=base_path_of(vector["base"]),
        clock=FixedClock(datetime.fromtimestamp(vector["claims"]["iat"], UTC)),
    )
    signed = next(auth.sync_auth_flow(request))
    assert signed.url.raw_path.decode() == vector["url"]  # httpx sends the URL unchanged
    scheme, _, token = signed.headers["Authorization"].partition(" ")
    assert scheme == "JWT"
    assert token == vector["token"]
    claims = jwt.decode(
        token, VECTORS["secret"], algorithms=["HS256"], options={"verify_exp": False}
    )
    assert claims == vector["claims"]
    path, _, query = vector["url"].partition("?")
    assert query_string_hash("GET", path, query, base_path_of(vector["base"])) == vector["qsh"]


def test_query_encoding_is_the_one_the_vectors_put_on_the_wire() -> None:
    jql = encode_query(
        [
            ("jql", 'project = TEST AND text ~ "foo bar"'),
            ("fields", "summary"),
            ("fields", "status"),
            ("maxResults", "50"),
        ]
    )
    assert jql == OUTBOUND[0]["url"].partition("?")[2]
    autocomplete = encode_query([("fieldName", "cf[10010]"), ("fieldValue", "ab c")])
    assert autocomplete == OUTBOUND[2]["url"].partition("?")[2]


def test_connect_token_lives_180_seconds() -> None:
    token = connect_token(
        app_key="app",
        shared_secret=SECRET,
        method="GET",
        raw_path="/rest/api/2/status",
        raw_query="",
        base_path="",
        issued_at=1_700_000_000,
    )
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims["exp"] - claims["iat"] == 180


def test_the_auth_object_never_shows_the_secret() -> None:
    auth = ConnectJwtAuth(app_key="app", shared_secret=SECRET, base_path="", clock=FixedClock())
    assert SECRET not in repr(auth)


async def test_the_token_jira_received_verifies(
    api: HttpJiraApi, jira: FakeJira, site: FakeJiraSite
) -> None:
    before = int(time.time())
    await api.search_issues(a_tenant(site.base_url), 'text ~ "crash \\"now\\""')
    (received,) = jira.requests
    assert received.verified and received.status == 200
    assert received.raw_path == "/rest/api/3/search/jql"
    assert received.raw_query == (
        "jql=text%20~%20%22crash%20%5C%22now%5C%22%22&fields=summary&maxResults=20"
    )
    token = received.headers["authorization"].removeprefix("JWT ")
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["iss"] == settings_for().app.app_key
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] == claims["iat"] + 180
    assert claims["qsh"] == query_string_hash("GET", received.raw_path, received.raw_query)


async def test_qsh_is_relative_to_the_path_of_the_tenants_base_url(
    api: HttpJiraApi, jira: FakeJira
) -> None:
    site = jira.add_site("client-1", SECRET, base_path="/jira")
    site.add_issue("ABC-1", "Crash")
    issue = await api.get_issue(a_tenant(site.base_url), "ABC-1")
    assert issue is not None and issue.summary == "Crash"
    (received,) = jira.requests
    assert received.raw_path == "/jira/rest/api/3/issue/ABC-1"
    assert received.verified
    assert received.claims is not None
    assert received.claims["qsh"] == query_string_hash(
        "GET", "/rest/api/3/issue/ABC-1", "fields=summary"
    )
    assert received.claims["qsh"] != query_string_hash(
        "GET", "/jira/rest/api/3/issue/ABC-1", "fields=summary"
    )


async def test_path_values_are_percent_encoded(
    api: HttpJiraApi, jira: FakeJira, site: FakeJiraSite
) -> None:
    assert await api.get_issue(a_tenant(site.base_url), "ABC-1/../../x y") is None
    (received,) = jira.requests
    assert received.raw_path == "/rest/api/3/issue/ABC-1%2F..%2F..%2Fx%20y"
    assert received.verified


# -- the fake server refuses bad tokens (so the tests above can fail) ------------------


def _raw_get(url: str, token: str | None) -> int:
    headers = {} if token is None else {"Authorization": f"JWT {token}"}
    return httpx.get(url, headers=headers, timeout=5).status_code


@pytest.mark.parametrize(
    "case", ["no token", "wrong secret", "wrong iss", "expired", "wrong qsh", "HS512", "bearer"]
)
def test_the_fake_jira_refuses_bad_tokens(jira: FakeJira, site: FakeJiraSite, case: str) -> None:
    now = int(time.time())
    path, query = "/rest/api/3/issue/ABC-1", "fields=summary"
    claims = {
        "iss": jira.app_key,
        "iat": now,
        "exp": now + 180,
        "qsh": query_string_hash("GET", path, query),
    }
    good = jwt.encode(claims, SECRET, algorithm="HS256")
    secret, algorithm = SECRET, "HS256"
    if case == "wrong secret":
        secret = "another-secret-of-the-same-length-0123456789-abcdefgh"
    if case == "wrong iss":
        claims["iss"] = "someone.else"
    if case == "expired":
        claims["iat"], claims["exp"] = now - 400, now - 220
    if case == "wrong qsh":
        claims["qsh"] = query_string_hash("GET", path, "fields=status")
    if case == "HS512":
        algorithm, secret = "HS512", SECRET * 2
    url = f"{site.base_url}{path}?{query}"
    assert _raw_get(url, good) == 200
    token = None if case == "no token" else jwt.encode(claims, secret, algorithm=algorithm)
    if case == "bearer":
        status = httpx.get(url, headers={"Authorization": f"Bearer {good}"}, timeout=5).status_code
    else:
        status = _raw_get(url, token)
    assert status == 401
    assert not jira.requests[-1].verified


async def test_a_token_jira_refuses_is_upstream_refused(make_api: MakeApi, jira: FakeJira) -> None:
    site = jira.add_site("client-1", "the-secret-jira-knows-is-another-one-0123456789")
    settings = settings_for()
    api = make_api(settings)
    with pytest.raises(UpstreamRefused) as raised:
        await api.get_issue(a_tenant(site.base_url), "ABC-1")
    assert jira.requests[-1].status == 401
    assert_safe(raised.value)


# -- where calls may go -------------------------------------------------------------


async def test_a_base_url_no_longer_allowed_sends_nothing(
    make_api: MakeApi, jira: FakeJira, site: FakeJiraSite
) -> None:
    api = make_api(settings_for(hosts="https://*.atlassian.net"))
    with pytest.raises(UpstreamFailed) as raised:
        await api.get_issue(a_tenant(site.base_url), "ABC-1")
    assert "not an allowed host" in raised.value.detail
    assert jira.requests == [] and jira.connections == 0


@pytest.mark.parametrize(
    "base_url",
    [
        "http://user:pw@127.0.0.1:{port}",
        "http://127.0.0.1:{port}/?x=1",
        "http://127.0.0.1:{port}/#frag",
        "http://127.0.0.1:{port}/a/../b",
        "ftp://127.0.0.1:{port}",
        "http://127.0.0.1:{port}/a%2fb",
    ],
)
async def test_a_malformed_tenant_base_url_sends_nothing(
    api: HttpJiraApi, jira: FakeJira, site: FakeJiraSite, base_url: str
) -> None:
    with pytest.raises(UpstreamFailed):
        await api.get_issue(a_tenant(base_url.format(port=jira.port)), "ABC-1")
    assert jira.requests == [] and jira.connections == 0


async def test_a_redirect_is_not_followed(api: HttpJiraApi, site: FakeJiraSite) -> None:
    with FakeJira(settings_for().app.app_key) as elsewhere:
        target = elsewhere.add_site("client-1", SECRET)
        target.add_issue("ABC-1", "Crash")
        site.reply("issue", Reply.redirect(f"{target.base_url}/rest/api/3/issue/ABC-1"))
        with pytest.raises(UpstreamFailed) as raised:
            await api.get_issue(a_tenant(site.base_url), "ABC-1")
        assert raised.value.status == 302
        assert elsewhere.requests == [] and elsewhere.connections == 0


async def test_loopback_not_named_by_a_pattern_is_refused_before_connecting(
    make_api: MakeApi, jira: FakeJira, site: FakeJiraSite
) -> None:
    # `localhost` is allowed by a wildcard, but it resolves to a loopback address that no
    # wildcard-free pattern names.
    api = make_api(settings_for(hosts="http://*:*"))
    with pytest.raises(UpstreamFailed) as raised:
        await api.get_issue(a_tenant(f"http://localhost:{jira.port}"), "ABC-1")
    assert "address that is not allowed" in raised.value.detail
    assert jira.requests == [] and jira.connections == 0


async def test_issue11_an_exact_host_pattern_lets_its_host_resolve_to_a_private_address(
    make_api: MakeApi, jira: FakeJira, site: FakeJiraSite
) -> None:
    # SPEC "Outbound calls to Jira": a wildcard-free pattern naming the host (not only an
    # IP literal) allows the private address it resolves to; one rule for every target.
    api = make_api(
        settings_for(hosts="http://jira.internal:*"),
        resolver_of({"jira.internal": ["127.0.0.1"]}),
    )
    await api.get_issue(a_tenant(f"http://jira.internal:{jira.port}"), "ABC-1")
    assert jira.connections == 1


def resolver_of(table: dict[str, list[str]], seen: list[str] | None = None) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        if seen is not None:
            seen.append(host)
        return table[host]

    return resolve


# Only loopback answers here, so that even a broken guard never sends a packet off this
# machine; the private, link-local and other ranges are covered in tests/unit/test_egress.py.
@pytest.mark.parametrize("addresses", [["127.0.0.1"], ["127.0.0.2"], ["::1"], ["::ffff:127.0.0.1"]])
async def test_a_name_resolving_to_a_private_address_is_refused(
    make_api: MakeApi, jira: FakeJira, site: FakeJiraSite, addresses: list[str]
) -> None:
    api = make_api(
        settings_for(hosts="http://*.example:*"), resolver_of({"jira.example": addresses})
    )
    with pytest.raises(UpstreamFailed):
        await api.get_issue(a_tenant(f"http://jira.example:{jira.port}"), "ABC-1")
    assert jira.requests == [] and jira.connections == 0


async def test_every_resolved_address_is_checked_before_any_is_used(
    make_api: MakeApi, jira: FakeJira, site: FakeJiraSite
) -> None:
    # 127.0.0.1 is named (allowed) and comes first, but 127.0.0.2 is not: nothing is opened.
    api = make_api(
        settings_for(hosts=f"http://*.example:*,{LOOPBACK}"),
        resolver_of({"jira.example": ["127.0.0.1", "127.0.0.2"]}),
    )
    with pytest.raises(UpstreamFailed):
        await api.get_issue(a_tenant(f"http://jira.example:{jira.port}"), "ABC-1")
    assert jira.connections == 0


async def test_the_connection_goes_to_the_address_that_was_checked(
    make_api: MakeApi, jira: FakeJira, site: FakeJiraSite
) -> None:
    # jira.example exists in no DNS: reaching the server proves the checked address is used.
    seen: list[str] = []
    api = make_api(
        settings_for(hosts=f"http://*.example:*,{LOOPBACK}"),
        resolver_of({"jira.example": ["127.0.0.1"]}, seen),
    )
    issue = await api.get_issue(a_tenant(f"http://jira.example:{jira.port}"), "ABC-1")
    assert issue is not None and issue.key == "ABC-1"
    assert seen == ["jira.example"]
    (received,) = jira.requests
    assert received.headers["host"] == f"jira.example:{jira.port}"
    assert received.verified


async def test_a_host_that_rebinds_to_a_forbidden_address_is_refused_on_the_next_connection(
    make_api: MakeApi, jira: FakeJira, site: FakeJiraSite
) -> None:
    table = {"jira.example": ["127.0.0.1"]}
    settings = settings_for(hosts=f"http://*.example:*,{LOOPBACK}")
    first = make_api(settings, resolver_of(table))
    assert await first.get_issue(a_tenant(f"http://jira.example:{jira.port}"), "ABC-1")
    table["jira.example"] = ["127.0.0.2"]  # loopback too, but no pattern names it
    second = make_api(settings, resolver_of(table))
    with pytest.raises(UpstreamFailed):
        await second.get_issue(a_tenant(f"http://jira.example:{jira.port}"), "ABC-1")
    assert len(jira.requests) == 1


async def test_an_unreachable_jira_is_upstream_failed(make_api: MakeApi) -> None:
    with FakeJira("app") as gone:
        url = gone.url
    api = make_api(settings_for())
    with pytest.raises(UpstreamFailed) as raised:
        await api.get_issue(a_tenant(url), "ABC-1")
    assert raised.value.detail == "could not reach Jira"


# -- S8 error mapping -----------------------------------------------------------------


async def test_S8_a_hung_jira_is_a_timeout_within_the_configured_timeout(
    make_api: MakeApi, jira: FakeJira, site: FakeJiraSite
) -> None:
    api = make_api(settings_for(timeout="0.3"))
    site.reply("statuses", Reply.hang(30))
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        await api.statuses(a_tenant(site.base_url))
    assert time.monotonic() - started < 5  # not the 30 s the server would take


@pytest.mark.parametrize(
    ("retry_after", "expected"), [("12", 12), (None, 30), ("0", 1), ("999999", 3600), ("soon", 30)]
)
async def test_S8_429_carries_retry_after(
    api: HttpJiraApi, site: FakeJiraSite, retry_after: str | None, expected: int
) -> None:
    site.reply("search", Reply.rate_limited(retry_after))
    with pytest.raises(UpstreamRateLimited) as raised:
        await api.search_issues(a_tenant(site.base_url), 'text ~ "x"')
    assert raised.value.retry_after == expected


async def test_S8_429_with_an_http_date_retry_after(api: HttpJiraApi, site: FakeJiraSite) -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    site.reply("search", Reply.rate_limited(format_datetime(when, usegmt=True)))
    with pytest.raises(UpstreamRateLimited) as raised:
        await api.search_issues(a_tenant(site.base_url), 'text ~ "x"')
    assert 110 <= raised.value.retry_after <= 121


@pytest.mark.parametrize(
    ("reply", "expected", "status"),
    [
        (Reply.status_only(401), UpstreamRefused, None),
        (Reply.status_only(403), UpstreamRefused, None),
        (Reply.status_only(404), UpstreamNotFound, None),
        (Reply.status_only(400), UpstreamFailed, 400),
        (Reply.status_only(410), UpstreamFailed, 410),
        (Reply.status_only(500), UpstreamFailed, 500),
        (Reply.status_only(503), UpstreamFailed, 503),
        (Reply.html(), UpstreamFailed, 200),
        (Reply.html(status=502), UpstreamFailed, 502),
        (Reply.invalid_json(), UpstreamFailed, 200),
        (Reply(body=b'{"a": 1}', content_type=None), UpstreamFailed, 200),
        (Reply(body=b"\xff\xfe[]"), UpstreamFailed, 200),
        (Reply.json({"users": []}), UpstreamFailed, None),  # wrong shape: not an array
        (Reply.json([{"accountId": 7, "displayName": "x"}]), None, None),  # skipped
        (Reply.json([{"accountId": "a", "displayName": ["x"]}]), UpstreamFailed, None),
        (Reply.redirect("http://127.0.0.1:9/elsewhere", status=301), UpstreamFailed, 301),
        (Reply.redirect("http://127.0.0.1:9/elsewhere", status=307), UpstreamFailed, 307),
    ],
    ids=lambda value: getattr(value, "status", value) if isinstance(value, Reply) else None,
)
async def test_S8_each_bad_answer_maps_to_one_error_kind_with_a_safe_detail(
    api: HttpJiraApi,
    jira: FakeJira,
    site: FakeJiraSite,
    reply: Reply,
    expected: type[UpstreamError] | None,
    status: int | None,
) -> None:
    site.reply("users", reply)
    if expected is None:
        assert await api.users(a_tenant(site.base_url), "x") == []
        return
    with pytest.raises(expected) as raised:
        await api.users(a_tenant(site.base_url), "x")
    token = jira.requests[-1].headers["authorization"].removeprefix("JWT ")
    assert_safe(raised.value, token)
    if status is not None:
        assert isinstance(raised.value, UpstreamFailed) and raised.value.status == status


async def test_S8_an_oversized_answer_is_refused(api: HttpJiraApi, site: FakeJiraSite) -> None:
    site.reply("statuses", Reply(body=b"[" + b" " * MAX_RESPONSE_BYTES + b"]"))
    with pytest.raises(UpstreamFailed) as raised:
        await api.statuses(a_tenant(site.base_url))
    assert "too large" in raised.value.detail


@pytest.mark.parametrize("status", [403, 404])
async def test_W5_a_403_or_404_on_user_email_means_hidden(
    api: HttpJiraApi, site: FakeJiraSite, status: int
) -> None:
    site.emails["acc-1"] = "ada@example.com"
    site.reply("email", Reply.status_only(status))
    assert await api.user_email(a_tenant(site.base_url), "acc-1") is None


async def test_W5_user_email_401_is_still_refused(api: HttpJiraApi, site: FakeJiraSite) -> None:
    site.reply("email", Reply.status_only(401))
    with pytest.raises(UpstreamRefused):
        await api.user_email(a_tenant(site.base_url), "acc-1")


async def test_S4_users_without_account_id_are_left_out(
    api: HttpJiraApi, jira: FakeJira, site: FakeJiraSite
) -> None:
    site.add_user(None, "Former user", "former@example.com")
    site.add_user("acc-1", "Ada", "")
    users = await api.users(a_tenant(site.base_url), "")
    assert users == [JiraUser("acc-1", "Ada", None)]
    assert jira.requests[-1].raw_query == "query="


async def test_one_tenants_failure_does_not_poison_the_status_cache(
    api: HttpJiraApi, site: FakeJiraSite
) -> None:
    site.reply("statuses", Reply.status_only(500), times=1)
    with pytest.raises(UpstreamFailed):
        await api.statuses(a_tenant(site.base_url))
    assert len(await api.statuses(a_tenant(site.base_url))) == 5


# -- wiring ---------------------------------------------------------------------------


async def test_bootstrap_wires_one_guarded_jira_client_closed_at_shutdown(
    tmp_path: Path, jira: FakeJira, site: FakeJiraSite
) -> None:
    container = bootstrap(a_settings(tmp_path, jira_hosts=LOOPBACK))
    try:
        # W5: the status cache wraps the httpx client in the composition root.
        assert isinstance(container.jira, CachingJiraApi)
        assert isinstance(container.jira.inner, HttpJiraApi)
        assert container.jira_http is not None
        assert container.jira_http.follow_redirects is False
        issue = await container.jira.get_issue(a_tenant(site.base_url), "ABC-1")
        assert issue is not None and issue.summary == "Crash on start"
        assert jira.requests[-1].verified
        await container.shutdown()
        assert container.jira_http.is_closed
    finally:
        container.close()
