"""End to end on PostgreSQL, one and two replicas, beside SQLite (SPEC §7, §9):
`scripts/bench --postgres-e2e`.

The workload of bench/e2e.py (status changes into "done" over 1,000 linked issues, a fast
fake Sentry in its own process), offered at a fixed rate for a few seconds, split evenly over
the replicas (each a `serve` with its worker, all on one database). The figure is deliveries
processed per second: all of them, divided by the time from the first send until none is
pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from tests.support.postgres import PostgresCluster

from adapters.config import load_settings
from adapters.wiring import bootstrap
from bench.e2e import (
    CLIENT_KEY,
    DONE,
    ISSUES,
    OPEN,
    ORG,
    PROJECT,
    SENTRY_TOKEN,
    SHARED_SECRET,
    FastSentry,
    _env,
    delivery_body,
    requests_for,
    send_stream,
)
from bench.pg_cpu import cluster_cpu_seconds
from bench.wrk import free_port, serve_command, served
from core.model.bindings import Binding, Link, StatusRule
from core.model.tenant import Installation


def prepare_any(env: dict[str, str], sentry_url: str) -> None:
    """bench/e2e.py's tenant, binding and links, on either engine (through the container)."""
    container = bootstrap(load_settings(env))

    async def arrange() -> None:
        try:
            # Both engines' tenant stores have the install write (the port keeps it private).
            tenant = await container.tenants.upsert_installed(Installation(  # type: ignore[attr-defined]
                client_key=CLIENT_KEY, shared_secret=SHARED_SECRET,
                base_url="https://bench.atlassian.net", display_url=None,
                installed_at=datetime.now(UTC)))
            rule = StatusRule(resolve=frozenset({DONE}), unresolve=frozenset({OPEN}))
            binding = Binding(tenant_id=tenant.id, org=ORG, sentry_url=sentry_url,
                              sentry_token=SENTRY_TOKEN, status_map={PROJECT: rule})
            await container.admin.bindings.change(tenant.id, ORG, lambda _: binding)
            for n in range(1, ISSUES + 1):
                await container.admin.links.replace(Link(tenant.id, ORG, f"BEN-{n}", (str(n),)))
        finally:
            await container.shutdown()

    asyncio.run(arrange())
    container.close()


def _pending(database: str) -> int:
    sql = "SELECT count(*) FROM deliveries WHERE state = 'pending'"
    if database.startswith("postgresql://"):
        with psycopg.connect(database) as conn:
            row = conn.execute(sql).fetchone()
    else:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as lite:
            row = lite.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def measure_processing(work: Path, database: str, *, replicas: int, rate: float,
                       seconds: float, db_cpu: Callable[[], float] | None = None
                       ) -> dict[str, Any]:
    """The stream through `replicas` serve processes; beside the rate, the CPU per delivery
    of the serve processes (their workers included) and, with `db_cpu`, of the database
    server's processes (#16), and the 1-minute load average at the end."""
    work.mkdir(parents=True, exist_ok=True)
    sentry = FastSentry()
    try:
        ports = [free_port() for _ in range(replicas)]
        envs = [_env(work, port, SENTRY_JIRA_DATABASE=database) for port in ports]
        prepare_any(envs[0], sentry.url)
        count = int(rate * seconds)
        base = datetime.now(UTC) - timedelta(days=1)
        bodies = [delivery_body(i % ISSUES + 1, base + timedelta(milliseconds=i))
                  for i in range(count)]
        with contextlib.ExitStack() as stack:
            servers = [stack.enter_context(served(serve_command(port), env, port,
                                                  work / f"serve-{port}.log"))
                       for port, env in zip(ports, envs, strict=True)]
            serve_before = sum(server.cpu_seconds() for server in servers)
            db_before = db_cpu() if db_cpu else 0.0
            started = time.monotonic()

            async def stream() -> list[Any]:
                return await asyncio.gather(*(
                    send_stream(port, requests_for(bodies[r::replicas], port, f"r{r}"),
                                rate / replicas)
                    for r, port in enumerate(ports)))

            sent = asyncio.run(stream())
            while _pending(database) > 0 and time.monotonic() - started < seconds + 120:
                time.sleep(0.1)
            elapsed = time.monotonic() - started
            left = _pending(database)
            serve_cpu = sum(server.cpu_seconds() for server in servers) - serve_before
            used_db = (db_cpu() - db_before) if db_cpu else 0.0
    finally:
        sentry.close()
    accepted = sum(1 for s in sent for status in s.statuses if status == 202)
    return {"replicas": replicas, "offered": rate, "deliveries": count, "accepted": accepted,
            "left": left, "seconds": elapsed,
            "processed_per_second": (accepted - left) / elapsed if elapsed else 0.0,
            "serve_cpu_us": serve_cpu / count * 1e6 if count else 0.0,
            "db_cpu_us": used_db / count * 1e6 if count else 0.0,
            "load1": os.getloadavg()[0]}


def measure_pg_e2e(work: Path, *, rate: float, seconds: float) -> list[dict[str, Any]]:
    results = [{"engine": "sqlite", **measure_processing(
        work / "sqlite", str(work / "sqlite.db"), replicas=1, rate=rate, seconds=seconds)}]
    cluster = PostgresCluster(durable=True)
    cluster.start()
    try:
        for replicas in (1, 2):
            url = cluster.database(migrated=False)
            results.append({"engine": "postgresql", **measure_processing(
                work / f"pg{replicas}", url, replicas=replicas, rate=rate, seconds=seconds,
                db_cpu=lambda: cluster_cpu_seconds(cluster.data))})
    finally:
        cluster.stop()
    return results


def print_pg_e2e(results: list[dict[str, Any]]) -> None:
    print("\nend to end (§7, §9): deliveries processed per second, the stream split over the "
          "replicas")
    print("serve µs / pg µs: CPU per delivery of the serve processes (workers included) and of "
          "the PostgreSQL cluster's processes; load: 1-min load average at the end")
    print(f"{'engine':<12}{'replicas':>9}{'offered/s':>11}{'accepted':>10}{'left':>6}"
          f"{'seconds':>9}{'processed/s':>13}{'serve µs':>10}{'pg µs':>8}{'load':>6}")
    for r in results:
        print(f"{r['engine']:<12}{r['replicas']:>9}{r['offered']:>11.0f}{r['accepted']:>10}"
              f"{r['left']:>6}{r['seconds']:>9.1f}{r['processed_per_second']:>13.0f}"
              f"{r['serve_cpu_us']:>10.0f}{r['db_cpu_us']:>8.0f}{r['load1']:>6.2f}")
