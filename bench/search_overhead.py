"""Search overhead (S1–S3): the service's search endpoint vs the same Jira call made directly.

One tenant, installed with the loopback fake Jira of the tests as its `baseUrl`
(`SENTRY_JIRA_JIRA_HOSTS=http://127.0.0.1:*`), bound to one org, with a search token of
that org, all written through the project's SQLite stores before the server starts.

Two searches, each timed two ways, one request at a time with keep-alive clients:

- through the service: `GET /extensions/jira/search/{org}/{tenant}/?field=externalIssue&
  query=…` with `Authorization: Bearer <search token>` (the service checks the token,
  finds the tenant and binding, signs a Connect JWT and calls the fake Jira);
- direct: the request the service makes, sent straight to the fake Jira with a correctly
  signed token (minted before the clock starts).

The four kinds alternate in every iteration. Overhead = through − direct, per percentile.
The fake Jira verifies every token; the run fails if any request was refused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from tests.support.fake_jira import FakeJira

from adapters.config import load_settings
from adapters.outbound.jira import connect_token, encode_query
from adapters.sqlite.admin import SqliteBindingStore, SqliteSearchTokenStore
from adapters.sqlite.tenants import SqliteTenantStore
from adapters.wiring import open_database
from bench.ack import FERNET_KEY
from bench.wrk import free_port, percentile, serve_command, served, server_env
from core.model.bindings import Binding
from core.model.tenant import Installation
from core.search.search import MAX_ISSUE_RESULTS, text_search_jql

ORG = "bench-org"
CLIENT_KEY = "bench-search-client"
SECRET = "bench-search-shared-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
SEARCH_TOKEN = "bench-search-token-0123456789abcdefghijklmnop"
ISSUE_KEY = "APP-123"
TEXT = "crash on start"
WARMUP = 10  # iterations not counted: both sides warm up


def jira_request(query_text: str) -> tuple[str, list[tuple[str, str]]]:
    """(path, query parameters) of the Jira call the service makes for an issue search."""
    if query_text == ISSUE_KEY:
        return f"/rest/api/3/issue/{ISSUE_KEY}", [("fields", "summary")]
    return "/rest/api/3/search/jql", [
        ("jql", text_search_jql(query_text)),
        ("fields", "summary"),
        ("maxResults", str(MAX_ISSUE_RESULTS)),
    ]


def prepare(env: dict[str, str], jira_url: str) -> int:
    """Install the tenant, bind the org, create the search token; the tenant id."""
    database = open_database(load_settings(env))

    async def arrange() -> int:
        tenant = await SqliteTenantStore(database).upsert_installed(
            Installation(
                client_key=CLIENT_KEY,
                shared_secret=SECRET,
                base_url=jira_url,
                display_url=None,
                installed_at=datetime.now(UTC),
            )
        )
        await SqliteBindingStore(database).change(
            tenant.id,
            ORG,
            lambda _: Binding(
                tenant_id=tenant.id,
                org=ORG,
                sentry_url="https://sentry.example.com",
                sentry_token="sntrys_bench_search_0123456789",
            ),
        )
        await SqliteSearchTokenStore(database).create(ORG, SEARCH_TOKEN, datetime.now(UTC))
        return tenant.id

    try:
        return asyncio.run(arrange())
    finally:
        database.close()


def measure_search_overhead(workdir: Path, *, iterations: int) -> dict[str, Any]:
    """p50 / p95 (ms) of each search through the service and direct, and the overheads."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    app_key = "127.0.0.1.jira"
    with FakeJira(app_key=app_key) as jira:
        site = jira.add_site(CLIENT_KEY, SECRET)
        site.add_issue(ISSUE_KEY, "Crash on start")
        for n in range(1, 21):
            site.add_issue(f"APP-{n}", f"Crash on start, case {n}")
        site.jql_results[text_search_jql(TEXT)] = [f"APP-{n}" for n in range(1, 21)]
        env = server_env(
            {
                "SENTRY_JIRA_DATABASE": str(workdir / "search.db"),
                "SENTRY_JIRA_SECRET_KEY": FERNET_KEY,
                "SENTRY_JIRA_BASE_URL": base_url,
                "SENTRY_JIRA_APP_KEY": app_key,
                "SENTRY_JIRA_JIRA_HOSTS": "http://127.0.0.1:*",
                "SENTRY_JIRA_WORKER": "off",
            }
        )
        tenant_id = prepare(env, jira.url)
        search_path = f"/extensions/jira/search/{ORG}/{tenant_id}/"
        bearer = {"Authorization": f"Bearer {SEARCH_TOKEN}"}

        with (
            served(serve_command(port), env, port, workdir / "search.log") as server,
            httpx.Client(timeout=10, follow_redirects=False) as client,
        ):

            def timed(send: Callable[[], httpx.Response], check: Callable[[Any], bool]) -> float:
                started = time.perf_counter()
                response = send()
                elapsed = time.perf_counter() - started
                if response.status_code != 200 or not check(response.json()):
                    raise RuntimeError(
                        f"search answered {response.status_code}: {response.text[:200]}"
                    )
                return elapsed * 1000

            def through(text: str) -> Callable[[], httpx.Response]:
                query = urlencode({"field": "externalIssue", "query": text})
                url = f"{server.url}{search_path}?{query}"
                return lambda: client.get(url, headers=bearer)

            def direct(text: str) -> Callable[[], httpx.Response]:
                path, params = jira_request(text)
                raw_query = encode_query(params)
                token = connect_token(
                    app_key=app_key,
                    shared_secret=SECRET,
                    method="GET",
                    raw_path=path,
                    raw_query=raw_query,
                    base_path="",
                    issued_at=int(time.time()),
                )
                url = f"{jira.url}{path}?{raw_query}"
                headers = {"Authorization": f"JWT {token}", "Accept": "application/json"}
                return lambda: client.get(url, headers=headers)

            kinds: dict[
                str, tuple[Callable[[], Callable[[], httpx.Response]], Callable[[Any], bool]]
            ] = {
                "key_through": (lambda: through(ISSUE_KEY), lambda items: len(items) == 1),
                "key_direct": (lambda: direct(ISSUE_KEY), lambda issue: issue["key"] == ISSUE_KEY),
                "text_through": (lambda: through(TEXT), lambda items: len(items) == 20),
                "text_direct": (lambda: direct(TEXT), lambda answer: len(answer["issues"]) == 20),
            }
            times: dict[str, list[float]] = {name: [] for name in kinds}
            for i in range(WARMUP + iterations):
                for name, (make, check) in kinds.items():
                    elapsed = timed(make(), check)  # the token is minted before timing
                    if i >= WARMUP:
                        times[name].append(elapsed)
        refused = [r for r in jira.requests if not r.verified]
        if refused:
            raise RuntimeError(f"the fake Jira refused {len(refused)} requests")
        jira_calls = len(jira.requests)

    result: dict[str, Any] = {"iterations": iterations, "jira_calls": jira_calls}
    for name, values in times.items():
        result[f"{name}_p50"] = percentile(values, 0.5)
        result[f"{name}_p95"] = percentile(values, 0.95)
    for search in ("key", "text"):
        for p in ("p50", "p95"):
            result[f"{search}_overhead_{p}"] = (
                result[f"{search}_through_{p}"] - result[f"{search}_direct_{p}"]
            )
    return result
