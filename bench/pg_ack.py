"""SPEC §7 / §9: the acknowledgement figure on PostgreSQL (`scripts/bench --postgres`).

A throwaway PostgreSQL cluster (tests/support/postgres.py: initdb + pg_ctl as the `postgres`
user, Unix socket only, the server's default durability: fsync and synchronous_commit on)
holds one tenant; `sentry-jira serve` on it (worker off), the same on SQLite, and the empty
Litestar handler are driven by wrk with the same signed deliveries, rounds alternating.
A second PostgreSQL server asks for `synchronous_commit=off` on its connections (libpq
`options`), the setting docs/operations.md discusses.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.support.postgres import PostgresCluster, missing_reason

from adapters.config import load_settings
from bench.ack import (
    CLIENT_KEY,
    FERNET_KEY,
    FIXTURE,
    ISSUE_UPDATED,
    SHARED_SECRET,
    install_tenant,
    signed_headers,
)
from bench.pg_cpu import cluster_cpu_seconds
from bench.wrk import (
    REPO,
    Target,
    alternating_rounds,
    check_once,
    free_port,
    median_run,
    serve_command,
    served,
    server_env,
)
from core.model.tenant import Installation


def install_pg_tenant(env: dict[str, str]) -> None:
    from adapters.postgres.tenants import PgTenantStore
    from adapters.wiring import open_postgres

    async def upsert() -> None:
        database = open_postgres(load_settings(env))
        try:
            await PgTenantStore(database).upsert_installed(Installation(
                client_key=CLIENT_KEY, shared_secret=SHARED_SECRET,
                base_url="https://bench.atlassian.net", display_url=None,
                installed_at=datetime.now(UTC)))
        finally:
            await database.aclose()

    asyncio.run(upsert())


def measure_pg_ack(workdir: Path, *, seconds: int, rounds: int,
                   connections: int) -> dict[str, Any]:
    reason = missing_reason()
    if reason is not None:
        raise RuntimeError(f"bench --postgres: {reason}")
    body = FIXTURE.read_bytes()
    headers = signed_headers(ISSUE_UPDATED)
    cluster = PostgresCluster(durable=True)
    cluster.start()
    try:
        url = cluster.database(migrated=False)
        async_commit = url + "&options=" + quote("-c synchronous_commit=off", safe="")

        def env_for(database: str, port: int) -> dict[str, str]:
            return server_env({
                "SENTRY_JIRA_DATABASE": database,
                "SENTRY_JIRA_SECRET_KEY": FERNET_KEY,
                "SENTRY_JIRA_BASE_URL": f"http://127.0.0.1:{port}",
                "SENTRY_JIRA_WORKER": "off",
            })

        ports = [free_port() for _ in range(3)]
        envs = [env_for(url, ports[0]), env_for(async_commit, ports[1]),
                env_for(str(workdir / "ack.db"), ports[2])]
        install_pg_tenant(envs[0])  # the second PostgreSQL server shares this database
        install_tenant(envs[2])
        empty_port = free_port()
        empty_cmd = [sys.executable, str(REPO / "bench" / "empty_app.py"), str(empty_port)]
        empty_env = server_env({})
        empty_env["PYTHONPATH"] = f"{REPO / 'src'}{os.pathsep}{REPO}"
        with (
            served(serve_command(ports[0]), envs[0], ports[0], workdir / "pg.log") as pg,
            served(serve_command(ports[1]), envs[1], ports[1], workdir / "pg-async.log") as pga,
            served(serve_command(ports[2]), envs[2], ports[2], workdir / "sqlite.log") as lite,
            served(empty_cmd, empty_env, empty_port, workdir / "empty.log") as empty,
        ):
            def db_cpu() -> float:
                return cluster_cpu_seconds(cluster.data)

            targets = [Target(s.url + ISSUE_UPDATED, headers, body, s, db_cpu=db_cpu)
                       for s in (pg, pga, lite, empty)]
            for target in targets:
                check_once(target.url, headers, body, 202)
            runs = alternating_rounds(targets, rounds=rounds, seconds=seconds,
                                      connections=connections, workdir=workdir)
    finally:
        cluster.stop()
    pg_run, async_run, sqlite_run, empty_run = (median_run(r) for r in runs)
    base = empty_run["rps"] or 1.0
    return {
        "postgres": pg_run, "postgres_async_commit": async_run, "sqlite": sqlite_run,
        "empty": empty_run,
        "ratio": pg_run["rps"] / base, "ratio_async_commit": async_run["rps"] / base,
        "ratio_sqlite": sqlite_run["rps"] / base,
    }


def print_pg_ack(figures: dict[str, Any], *, connections: int, rounds: int,
                 seconds: int) -> None:
    print(f"\nacknowledgement on PostgreSQL (§7, §9): wrk {connections} connections, "
          f"{rounds} rounds of {seconds} s alternating")
    print("serve µs: the serve process's CPU per request; pg µs: the cluster's processes' "
          "(postmaster, backends, WAL writer, …) per request; load: 1-min load at the end")
    print(f"{'run':<42}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}"
          f"{'serve µs':>10}{'pg µs':>8}{'load':>6}")
    for name, key in (("serve on PostgreSQL (synchronous_commit on)", "postgres"),
                      ("serve on PostgreSQL (synchronous_commit off)", "postgres_async_commit"),
                      ("serve on SQLite", "sqlite"), ("empty Litestar handler", "empty")):
        run = figures[key]
        print(f"{name:<42}{run['rps']:>10.0f}{run['p50']:>10.2f}{run['p99']:>10.2f}"
              f"{run['non2xx']:>10.0f}{run.get('cpu_us', 0.0):>10.0f}"
              f"{run.get('db_cpu_us', 0.0):>8.0f}{run.get('load1', 0.0):>6.2f}")
    print(f"PostgreSQL ack / empty rate ratio: {figures['ratio']:.2f}  (target ≥ 0.50); "
          f"synchronous_commit off: {figures['ratio_async_commit']:.2f}; "
          f"SQLite: {figures['ratio_sqlite']:.2f}")
