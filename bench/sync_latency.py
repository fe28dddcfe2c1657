"""Benchmark of SPEC §7 "a synced action reaches Sentry within 1 s (p95) of the
acknowledgement": `python bench/sync_latency.py [--deliveries 200] [--rate 20]`.

It starts `sentry-jira serve` (worker in-process) on a fresh database with a fake Sentry on
loopback, installs a tenant, a binding and one link per Jira issue directly in the database,
then sends signed deliveries at a modest rate, each moving its own issue into a status that
the binding's status map resolves (no Jira call on the way). For every delivery it measures
the time from the 202 to the fake Sentry receiving the PUT, and prints p50 / p95 / max.

`measure_sync_latency(...)` returns the figures as a dict, for `bench/run.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

from tests.support.fake_sentry import FakeSentry, RecordedRequest  # noqa: E402
from tests.support.process import free_port, server_env, wait_until_ready  # noqa: E402
from tests.support.webhooks import signed_delivery  # noqa: E402

from adapters.config import load_settings  # noqa: E402
from adapters.sqlite.tenants import SqliteTenantStore  # noqa: E402
from adapters.wiring import open_database, sqlite_admin_stores  # noqa: E402
from core.describe import ISSUE_UPDATED_PATH  # noqa: E402
from core.model.bindings import Binding, Link, StatusRule  # noqa: E402
from core.model.tenant import Installation  # noqa: E402

FERNET_KEY = "x8mmEJqS4u-SOE9C7kFH0SV1nsfgAXl0fR8-Yt1ZK-8="
CLIENT_KEY = "bench-sync-client"
SHARED_SECRET = "benchmark-sync-shared-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
SENTRY_TOKEN = "sntrys_benchmark-token-0123456789"
ORG = "bench"
PROJECT, FROM_STATUS, TO_STATUS = "10000", "3", "10101"


class ArrivalClock(FakeSentry):
    """The fake Sentry noting when each PUT arrived (time.perf_counter), by issue id."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: dict[str, float] = {}
        self.event = threading.Condition()

    def _record(self, request: RecordedRequest) -> Any:
        if request.method == "PUT":
            issue_id = request.path.rstrip("/").rsplit("/", 1)[-1]
            with self.event:
                self.arrived.setdefault(issue_id, time.perf_counter())
                self.event.notify_all()
        return super()._record(request)


def _prepare(env: dict[str, str], deliveries: int, sentry_url: str) -> int:
    database = open_database(load_settings(env))
    try:
        async def arrange() -> int:
            tenant = await SqliteTenantStore(database).upsert_installed(Installation(
                client_key=CLIENT_KEY, shared_secret=SHARED_SECRET,
                base_url="https://bench.atlassian.net", display_url=None,
                installed_at=datetime.now(UTC)))
            stores = sqlite_admin_stores(database)
            binding = Binding(tenant_id=tenant.id, org=ORG, sentry_url=sentry_url,
                              sentry_token=SENTRY_TOKEN,
                              status_map={PROJECT: StatusRule(resolve=frozenset({TO_STATUS}))})
            await stores.bindings.change(tenant.id, ORG, lambda _: binding)
            for n in range(1, deliveries + 1):
                await stores.links.replace(Link(tenant.id, ORG, f"BEN-{n}", (str(n),)))
            return tenant.id

        return asyncio.run(arrange())
    finally:
        database.close()


def _body(n: int) -> dict[str, Any]:
    return {
        "timestamp": int(time.time() * 1000),
        "webhookEvent": "jira:issue_updated",
        "issue": {"id": str(100000 + n), "key": f"BEN-{n}", "fields": {
            "project": {"id": PROJECT, "key": "BEN"}, "assignee": None,
            "updated": datetime.now(UTC).isoformat(timespec="milliseconds")}},
        "changelog": {"id": str(n), "items": [
            {"field": "status", "from": FROM_STATUS, "fromString": "In Progress",
             "to": TO_STATUS, "toString": "Done"}]},
    }


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def measure_sync_latency(*, deliveries: int = 200, rate: float = 20.0,
                         timeout: float = 10.0, workdir: Path | None = None) -> dict[str, Any]:
    """Send `deliveries` signed deliveries at `rate` per second to a fresh `serve`; return
    {"deliveries", "rate", "p50_ms", "p95_ms", "max_ms", "missing"} (latency 202 → PUT)."""
    own_dir = workdir is None
    work = workdir or Path(tempfile.mkdtemp(prefix="sentry-jira-sync-bench-"))
    port = free_port()
    env = server_env({
        "SENTRY_JIRA_DATABASE": str(work / "bench.db"),
        "SENTRY_JIRA_SECRET_KEY": FERNET_KEY,
        "SENTRY_JIRA_BASE_URL": f"http://127.0.0.1:{port}",
        "SENTRY_JIRA_SENTRY_HOSTS": "http://127.0.0.1:*",  # §8.3: the loopback fake Sentry
    })
    try:
        with ArrivalClock() as sentry:
            sentry.add_org(ORG, SENTRY_TOKEN)
            for n in range(1, deliveries + 1):
                sentry.add_issue(ORG, str(n))
            _prepare(env, deliveries, sentry.url)
            command = [sys.executable, "-m", "adapters.cli.main", "serve", "--port", str(port)]
            with open(work / "serve.log", "ab") as log:
                proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
                try:
                    url = f"http://127.0.0.1:{port}"
                    wait_until_ready(url + "/health", proc)
                    acked = _send(url, deliveries, rate)
                    _wait_for_all(sentry, acked, timeout)
                finally:
                    proc.terminate()
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
            with sentry.event:
                arrived = dict(sentry.arrived)
    finally:
        if own_dir:
            shutil.rmtree(work, ignore_errors=True)
    latencies = [(arrived[i] - t) * 1000 for i, t in acked.items() if i in arrived]
    missing = len(acked) - len(latencies)
    return {
        "deliveries": deliveries,
        "rate": rate,
        "p50_ms": _percentile(latencies, 0.50) if latencies else None,
        "p95_ms": _percentile(latencies, 0.95) if latencies else None,
        "max_ms": max(latencies) if latencies else None,
        "missing": missing,
    }


def _send(url: str, deliveries: int, rate: float) -> dict[str, float]:
    """Send at a steady rate; Sentry issue id → when its 202 arrived (perf_counter)."""
    acked: dict[str, float] = {}
    interval = 1.0 / rate
    start = time.perf_counter()
    with httpx.Client(timeout=10) as client:
        for n in range(1, deliveries + 1):
            pause = start + (n - 1) * interval - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            headers, raw = signed_delivery(CLIENT_KEY, SHARED_SECRET, _body(n),
                                           delivery_id=f"bench-{n}")
            response = client.post(url + ISSUE_UPDATED_PATH, content=raw, headers=headers)
            if response.status_code != 202:
                raise RuntimeError(f"delivery {n} answered {response.status_code}: "
                                   f"{response.text[:200]}")
            acked[str(n)] = time.perf_counter()
    return acked


def _wait_for_all(sentry: ArrivalClock, acked: dict[str, float], timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    with sentry.event:
        while not all(i in sentry.arrived for i in acked):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            sentry.event.wait(remaining)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="deliveries per second")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    figures = measure_sync_latency(deliveries=args.deliveries, rate=args.rate)
    print(f"\nsync latency (202 → Sentry PUT), {figures['deliveries']} deliveries at "
          f"{figures['rate']:g}/s")
    if figures["p50_ms"] is None:
        print("no write reached the fake Sentry")
    else:
        print(f"p50 {figures['p50_ms']:.1f} ms   p95 {figures['p95_ms']:.1f} ms   "
              f"max {figures['max_ms']:.1f} ms   (target p95 < 1000 ms)")
    if figures["missing"]:
        print(f"{figures['missing']} deliveries never reached Sentry")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
