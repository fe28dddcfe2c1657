"""SPEC §7 scale: the ack path with 100,000 tenants and 1,000,000 links vs a small database.

Two `sentry-jira serve` processes run at once: one on a database holding 100,000 installed
tenants (Fernet-encrypted shared secrets), 20,000 bindings (every fifth tenant bound to one
org) and 1,000,000 links (50 per binding); the other on a database holding only the 1,000
tenants the deliveries come from. Both get the same requests from wrk: signed deliveries
whose tokens rotate through those 1,000 tenants (every hundredth of the 100,000, so the
rows come from all over the table and the tenant row cache works as in production), each
with a unique delivery id. Rounds alternate; the cost is 1 − (big rate / small rate) per
round pair, the median over pairs is reported, with the CPU time per request of each.

The data is written straight into SQLite through the project's schema: the database is
opened with `adapters.wiring.open_database` (migrations, key check), and the rows go in by
`executemany` in transactions of `CHUNK` rows.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from adapters.config import load_settings
from adapters.crypto import SecretBox
from adapters.wiring import open_database
from bench.ack import FERNET_KEY, FIXTURE, ISSUE_UPDATED, webhook_token
from bench.wrk import (
    Target,
    alternating_rounds,
    check_once,
    free_port,
    median,
    median_run,
    serve_command,
    served,
    server_env,
)

TENANTS = 100_000
LINKS = 1_000_000
BOUND_EVERY = 5  # every fifth tenant is bound to one org
SENDING_TENANTS = 1_000
CHUNK = 50_000
INSTALLED_AT = "2026-01-01T00:00:00+00:00"
LINKED_KEY = "APP-123"  # the key of the delivery fixture: each sending tenant links it


def client_key(index: int) -> str:
    return f"bench-tenant-{index:06d}"


def shared_secret(index: int) -> str:
    return f"bench-shared-secret-{index:06d}-0123456789abcdefghijklmnopqrstuvwxyz"


def sending_tenants(tenants: int, senders: int) -> list[int]:
    """`senders` tenant indexes spread evenly over `range(tenants)` (multiples of a step)."""
    if not 0 < senders <= tenants:
        raise ValueError("need 0 < senders <= tenants")
    step = tenants // senders
    return [i * step for i in range(senders)]


def link_rows(tenant_index: int, count: int) -> Iterator[tuple[int, str, str, str]]:
    """`count` links of one bound tenant: the fixture's key first, then PRJ-1, PRJ-2, …"""
    tenant_id = tenant_index + 1
    org = f"org-{tenant_index:06d}"
    for n in range(count):
        key = LINKED_KEY if n == 0 else f"PRJ-{n}"
        yield (tenant_id, org, key, str(1_000_000_000 + tenant_index * 100 + n))


def _tenant_rows(indexes: Sequence[int], box: SecretBox) -> Iterator[tuple[Any, ...]]:
    for i in indexes:
        yield (
            i + 1,
            client_key(i),
            box.encrypt(shared_secret(i)),
            1,
            f"https://site-{i:06d}.atlassian.net",
            None,
            "installed",
            INSTALLED_AT,
            INSTALLED_AT,
        )


def _binding_rows(indexes: Sequence[int], box: SecretBox) -> Iterator[tuple[Any, ...]]:
    for i in indexes:
        yield (
            i + 1,
            f"org-{i:06d}",
            "https://sentry.example.com",
            box.encrypt(f"sntrys_bench_{i:06d}_0123456789abcdef"),
            1,
            1,
            "resolve",
            0,
            "{}",
            INSTALLED_AT,
            INSTALLED_AT,
        )


_INSERTS = {
    "tenants": "INSERT INTO tenants (id, client_key, shared_secret, secret_version, base_url, "
    "display_url, status, installed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "bindings": "INSERT INTO bindings (tenant_id, org, sentry_url, sentry_token, sync_status, "
    "sync_assignee, resolution_strategy, skip_archived, status_map, created_at, "
    "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "links": "INSERT INTO links (tenant_id, org, issue_key, sentry_issue_id) VALUES (?, ?, ?, ?)",
}


def _chunks(rows: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def load_database(
    env: dict[str, str], *, tenants: Sequence[int], bound: Sequence[int], links_per_binding: int
) -> dict[str, int]:
    """Create the database through `open_database` and bulk-insert the rows; row counts."""
    database = open_database(load_settings(env))
    box = database.box

    def insert(table: str, rows: Iterator[tuple[Any, ...]]) -> None:
        for chunk in _chunks(rows, CHUNK):

            def apply(db: Any, chunk: list[tuple[Any, ...]] = chunk) -> None:
                db.conn.executemany(_INSERTS[table], chunk)

            asyncio.run(database.write(apply))

    def links() -> Iterator[tuple[Any, ...]]:
        for i in bound:
            yield from link_rows(i, links_per_binding)

    def count(table: str) -> Callable[[Any], int]:
        return lambda db: int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    try:
        insert("tenants", _tenant_rows(tenants, box))
        insert("bindings", _binding_rows(bound, box))
        insert("links", links())
        return {t: asyncio.run(database.read(count(t))) for t in ("tenants", "bindings", "links")}
    finally:
        database.close()  # the last connection to close folds the WAL into the file


def measure_scale(
    workdir: Path,
    *,
    seconds: int,
    rounds: int,
    connections: int,
    tenants: int = TENANTS,
    links: int = LINKS,
    senders: int = SENDING_TENANTS,
) -> dict[str, Any]:
    """Rate and CPU per request of the ack path on the big and on the small database."""
    senders_ = sending_tenants(tenants, senders)
    bound = list(range(0, tenants, BOUND_EVERY))
    started = time.perf_counter()
    big_port, small_port = free_port(), free_port()
    envs = {}
    for name, port in (("big", big_port), ("small", small_port)):
        envs[name] = server_env(
            {
                "SENTRY_JIRA_DATABASE": str(workdir / f"scale-{name}.db"),
                "SENTRY_JIRA_SECRET_KEY": FERNET_KEY,
                "SENTRY_JIRA_BASE_URL": f"http://127.0.0.1:{port}",
                # Only the ack path is measured here: no background processing of deliveries.
                "SENTRY_JIRA_WORKER": "off",
            }
        )
    big_rows = load_database(
        envs["big"], tenants=range(tenants), bound=bound, links_per_binding=links // len(bound)
    )
    small_rows = load_database(envs["small"], tenants=senders_, bound=[], links_per_binding=0)
    load_seconds = time.perf_counter() - started

    body = FIXTURE.read_bytes()
    tokens = [f"JWT {webhook_token(client_key(i), shared_secret(i))}" for i in senders_]
    fixed = {"Content-Type": "application/json"}
    rotate = {"Authorization": tokens}
    with (
        served(serve_command(big_port), envs["big"], big_port, workdir / "big.log") as big,
        served(
            serve_command(small_port), envs["small"], small_port, workdir / "small.log"
        ) as small,
    ):
        targets = [
            Target(big.url + ISSUE_UPDATED, fixed, body, big, rotate),
            Target(small.url + ISSUE_UPDATED, fixed, body, small, rotate),
        ]
        for target in targets:  # the first and the last sender are known to both
            for token in (tokens[0], tokens[-1]):
                check_once(target.url, {**fixed, "Authorization": token}, body, 202)
        bigs, smalls = alternating_rounds(
            targets, rounds=rounds, seconds=seconds, connections=connections, workdir=workdir
        )
    costs = [1 - b["rps"] / s["rps"] for b, s in zip(bigs, smalls, strict=True) if s["rps"]]
    cpu_costs = [
        b["cpu_us"] / s["cpu_us"] - 1
        for b, s in zip(bigs, smalls, strict=True)
        if s.get("cpu_us") and b.get("cpu_us")
    ]
    return {
        "big": median_run(bigs),
        "small": median_run(smalls),
        "big_rows": big_rows,
        "small_rows": small_rows,
        "senders": senders,
        "load_seconds": load_seconds,
        "cost": median(costs),
        "cpu_cost": median(cpu_costs) if cpu_costs else None,
        "rounds": [(b["rps"], s["rps"]) for b, s in zip(bigs, smalls, strict=True)],
        "cpu_rounds": [
            (b.get("cpu_us", 0.0), s.get("cpu_us", 0.0)) for b, s in zip(bigs, smalls, strict=True)
        ],
    }


if __name__ == "__main__":  # a quick look at the loader alone
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        env = server_env(
            {"SENTRY_JIRA_DATABASE": f"{tmp}/x.db", "SENTRY_JIRA_SECRET_KEY": FERNET_KEY}
        )
        t0 = time.perf_counter()
        rows = load_database(
            env,
            tenants=range(TENANTS),
            bound=range(0, TENANTS, BOUND_EVERY),
            links_per_binding=LINKS // (TENANTS // BOUND_EVERY),
        )
        print(json.dumps(rows), f"{time.perf_counter() - t0:.1f} s")
