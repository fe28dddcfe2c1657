"""SPEC §7 end to end: `scripts/bench --e2e [--e2e-seconds 60]`.

The workload: signed status changes into "done" spread over 1,000 issues, each linked to one
Sentry issue of one bound org, every delivery with a newer `fields.updated`, streamed at a
fixed rate against `sentry-jira serve` with its worker; a fast fake Sentry on loopback
(`bench/fast_sentry.py`, its own process) answers every write at once.

- **Ceiling**: a bare loop making the same PUTs to the same fake Sentry with the client the
  worker uses (`sentry_http_client`, same limits) and the worker's concurrency, same run.
- **Stream**: a fixed schedule (delivery i at t0 + i / rate) sent by an asyncio sender on 32
  kept-alive raw sockets; its own lateness and CPU are reported, so one can see it is not the
  bottleneck. Per delivery: the time from its 202 to "processed" (its last journal entry;
  `applied`, or `stale` / `noop` where W6 coalesces).
- **Search**: from half the ceiling up (×1.25) or down (×0.75) to the highest rate meeting
  the targets: every delivery processed, p95 202 → processed < 1 s, the queue empty within
  5 s of the stream's end. Each trial has a fresh server and database.
- **Hot issue**: 200 deliveries on one issue within 1 s, moving it alternately into and out
  of "done" — all processed, the fake's writes in exactly the order sent (W6), time to drain.
- **Ack only**: wrk against `serve` with the worker off, for `e2e/ack`.
"""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from tests.support.webhooks import webhook_token

from adapters.config import load_settings
from adapters.outbound.sentry import PER_HOST_CALLS, sentry_http_client
from adapters.sqlite.tenants import SqliteTenantStore
from adapters.wiring import open_database, sqlite_admin_stores
from bench.wrk import (
    REPO,
    Target,
    alternating_rounds,
    check_once,
    free_port,
    median_run,
    percentile,
    serve_command,
    served,
    server_env,
)
from core.describe import ISSUE_UPDATED_PATH
from core.model.bindings import Binding, Link, StatusRule
from core.model.host_patterns import parse_host_patterns
from core.model.tenant import Installation

FERNET_KEY = "x8mmEJqS4u-SOE9C7kFH0SV1nsfgAXl0fR8-Yt1ZK-8="
CLIENT_KEY = "bench-e2e-client"
SHARED_SECRET = "benchmark-e2e-shared-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
SENTRY_TOKEN = "sntrys_benchmark-e2e-token-0123456789"
ORG = "bench"
PROJECT, OPEN, DONE = "10000", "3", "10101"
ISSUES = 1000
SENDER_CONNECTIONS = 32
WORKER_CONCURRENCY = PER_HOST_CALLS  # Sentry calls in flight per host (adapters/outbound/sentry.py)
P95_TARGET_S = 1.0
DRAIN_TARGET_S = 5.0
HOT_DELIVERIES = 200
T = TypeVar("T")


# ------------------------------------------------------------------ the fake Sentry


class FastSentry:
    """bench/fast_sentry.py as a child process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "bench" / "fast_sentry.py"), SENTRY_TOKEN],
            stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.proc.stdout.readline())}"
        self._seen = 0

    def writes(self) -> list[tuple[float, str, str]]:
        """The writes since the last call."""
        got = httpx.get(f"{self.url}/__writes?since={self._seen}", timeout=30).json()
        self._seen += len(got)
        return [(float(t), str(i), str(s)) for t, i, s in got]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


# ------------------------------------------------------------------ server and data


def _env(work: Path, port: int, **extra: str) -> dict[str, str]:
    return server_env({
        "SENTRY_JIRA_DATABASE": str(work / "e2e.db"),
        "SENTRY_JIRA_SECRET_KEY": FERNET_KEY,
        "SENTRY_JIRA_BASE_URL": f"http://127.0.0.1:{port}",
        "SENTRY_JIRA_SENTRY_HOSTS": "http://127.0.0.1:*",  # §8.3: the loopback fake Sentry
        **extra,
    })


def prepare(env: dict[str, str], sentry_url: str, issues: int = ISSUES) -> None:
    """One tenant, one bound org whose status map resolves DONE and unresolves OPEN, and a
    link BEN-n → Sentry issue n for every issue."""
    database = open_database(load_settings(env))
    try:
        async def arrange() -> None:
            tenant = await SqliteTenantStore(database).upsert_installed(Installation(
                client_key=CLIENT_KEY, shared_secret=SHARED_SECRET,
                base_url="https://bench.atlassian.net", display_url=None,
                installed_at=datetime.now(UTC)))
            stores = sqlite_admin_stores(database)
            rule = StatusRule(resolve=frozenset({DONE}), unresolve=frozenset({OPEN}))
            binding = Binding(tenant_id=tenant.id, org=ORG, sentry_url=sentry_url,
                              sentry_token=SENTRY_TOKEN, status_map={PROJECT: rule})
            await stores.bindings.change(tenant.id, ORG, lambda _: binding)
            for n in range(1, issues + 1):
                await stores.links.replace(Link(tenant.id, ORG, f"BEN-{n}", (str(n),)))

        asyncio.run(arrange())
    finally:
        database.close()


def delivery_body(issue: int, updated: datetime, *, into_done: bool = True) -> bytes:
    """A status change of issue BEN-<issue> into "done" (or out of it)."""
    frm, to = (OPEN, DONE) if into_done else (DONE, OPEN)
    stamp = updated.strftime("%Y-%m-%dT%H:%M:%S.") + f"{updated.microsecond // 1000:03d}+0000"
    return json.dumps({
        "timestamp": int(updated.timestamp() * 1000), "webhookEvent": "jira:issue_updated",
        "issue": {"id": str(100000 + issue), "key": f"BEN-{issue}", "fields": {
            "project": {"id": PROJECT, "key": "BEN"}, "assignee": None, "updated": stamp}},
        "changelog": {"id": str(issue), "items": [
            {"field": "status", "from": frm, "fromString": "x", "to": to, "toString": "y"}]},
    }).encode()


def requests_for(bodies: list[bytes], port: int, prefix: str) -> list[bytes]:
    """Raw HTTP/1.1 requests, one signed token for all (it is per route, not per body)."""
    token = webhook_token(CLIENT_KEY, SHARED_SECRET)
    head = (f"POST {ISSUE_UPDATED_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: JWT {token}\r\nContent-Type: application/json\r\n")
    return [
        (head + f"X-Atlassian-Webhook-Identifier: {prefix}-{n}\r\n"
         f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        for n, body in enumerate(bodies)
    ]


# ------------------------------------------------------------------ the sender


@dataclass
class Sent:
    scheduled: list[float] = field(default_factory=list)  # monotonic, per delivery
    sent: list[float] = field(default_factory=list)
    acked: list[float] = field(default_factory=list)       # monotonic, at the 202
    acked_wall: list[float] = field(default_factory=list)  # time.time(), at the 202
    statuses: list[int] = field(default_factory=list)
    cpu_seconds: float = 0.0
    elapsed: float = 0.0


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def send_stream(port: int, requests: list[bytes], rate: float) -> Sent:
    """Send request i at t0 + i / rate over SENDER_CONNECTIONS kept-alive connections."""
    n = len(requests)
    out = Sent([0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n, [0] * n)
    queue: asyncio.Queue[int] = asyncio.Queue()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                i = await queue.get()
                if i < 0:
                    return
                out.sent[i] = time.monotonic()
                writer.write(requests[i])
                out.statuses[i] = await _read_response(reader)
                out.acked[i] = time.monotonic()
                out.acked_wall[i] = time.time()
        finally:
            writer.close()

    workers = [asyncio.create_task(connection()) for _ in range(SENDER_CONNECTIONS)]
    start = time.monotonic() + 0.05
    for i in range(n):
        at = start + i / rate
        out.scheduled[i] = at
        pause = at - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)
        queue.put_nowait(i)
    for _ in workers:
        queue.put_nowait(-1)
    await asyncio.gather(*workers)
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    out.cpu_seconds = ((cpu_after.ru_utime - cpu_before.ru_utime)
                       + (cpu_after.ru_stime - cpu_before.ru_stime))
    out.elapsed = time.monotonic() - start
    return out


# ------------------------------------------------------------------ reading the outcome


def pending(db_path: Path) -> int:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as conn:
        return int(conn.execute(
            "SELECT count(*) FROM deliveries WHERE state = 'pending'").fetchone()[0])


def wait_drained(db_path: Path, since: float, limit: float) -> float | None:
    """Seconds from `since` (monotonic) until no delivery is pending; None past `limit`."""
    while True:
        if pending(db_path) == 0:
            return time.monotonic() - since
        if time.monotonic() - since > limit:
            return None
        time.sleep(0.05)


def processed_at(db_path: Path, prefix: str) -> dict[str, tuple[float, set[str]]]:
    """delivery id → (time of its last journal entry, its outcomes)."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as conn:
        rows = conn.execute(
            "SELECT delivery_id, at, outcome FROM sync_journal WHERE delivery_id LIKE ?",
            [prefix + "-%"]).fetchall()
    found: dict[str, tuple[float, set[str]]] = {}
    for delivery_id, at, outcome in rows:
        last, outcomes = found.get(delivery_id, (0.0, set()))
        outcomes.add(outcome)
        found[delivery_id] = (max(last, at), outcomes)
    return found


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ------------------------------------------------------------------ one trial


def run_stream(work: Path, rate: float, seconds: float, *, trial: str,
               profile: Path | None = None) -> dict[str, Any]:
    """A fresh serve + fake Sentry; `rate` deliveries/s for `seconds`; the figures."""
    work.mkdir(parents=True, exist_ok=True)
    sentry = FastSentry()
    try:
        port = free_port()
        env = _env(work, port)
        prepare(env, sentry.url)
        count = max(1, int(rate * seconds))
        base = datetime.now(UTC) - timedelta(days=1)
        bodies = [delivery_body(i % ISSUES + 1, base + timedelta(milliseconds=i))
                  for i in range(count)]
        requests = requests_for(bodies, port, trial)
        with served(serve_command(port), env, port, work / "serve.log") as app:
            spy = _py_spy(app.proc.pid, profile) if profile else None
            cpu0 = app.cpu_seconds()
            sent = asyncio.run(send_stream(port, requests, rate))
            ended = time.monotonic()
            drained = wait_drained(work / "e2e.db", ended, limit=DRAIN_TARGET_S + 25)
            server_cpu = app.cpu_seconds() - cpu0
            rss = rss_mb(app.proc.pid)
            if spy is not None:  # py-spy writes its profile when interrupted
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=60)
        writes = sentry.writes()
    finally:
        sentry.close()
    done = processed_at(work / "e2e.db", trial)
    latencies = []
    missing = 0
    for i in range(count):
        got = done.get(f"{trial}-{i}")
        if got is None or sent.statuses[i] != 202:
            missing += 1
            continue
        latencies.append(max(0.0, got[0] - sent.acked_wall[i]))
    ack_ms = [(a - s) * 1000 for a, s in zip(sent.acked, sent.sent, strict=True)]
    lateness_ms = [(s - d) * 1000 for s, d in zip(sent.sent, sent.scheduled, strict=True)]
    p95 = percentile(latencies, 0.95) if latencies else float("inf")
    figures = {
        "rate": rate, "deliveries": count, "seconds": seconds,
        "sent_rate": count / sent.elapsed if sent.elapsed else 0.0,
        "processed": len(latencies), "missing": missing,
        "non202": sum(1 for s in sent.statuses if s != 202),
        "p50_s": percentile(latencies, 0.50) if latencies else float("inf"),
        "p95_s": p95, "max_s": max(latencies) if latencies else float("inf"),
        "drain_s": drained, "ack_p50_ms": percentile(ack_ms, 0.50),
        "ack_p99_ms": percentile(ack_ms, 0.99),
        "sender_late_p99_ms": percentile(lateness_ms, 0.99),
        "sender_cpu_share": sent.cpu_seconds / sent.elapsed if sent.elapsed else 0.0,
        "server_cpu_share": server_cpu / (sent.elapsed + (drained or 0.0)),
        "server_cpu_us": server_cpu / count * 1e6,
        "sentry_writes": len(writes), "rss_mb": rss,
    }
    figures["met"] = (missing == 0 and p95 < P95_TARGET_S and drained is not None
                      and drained < DRAIN_TARGET_S)
    return figures


def _py_spy(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        print("py-spy is not installed in the venv: no profile", flush=True)
        return None
    return subprocess.Popen([str(spy), "record", "-p", str(pid), "-f", "raw", "-o", str(out),
                             "-r", "200", "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ------------------------------------------------------------------ ceiling, hot issue, ack


async def _bare_loop(sentry_url: str, seconds: float) -> tuple[float, float]:
    """The worker's client (`sentry_http_client`), WORKER_CONCURRENCY PUTs at a time; the
    rate and this process's CPU time per PUT (µs)."""
    client = sentry_http_client(parse_host_patterns("http://127.0.0.1:*"))
    headers = {"Authorization": f"Bearer {SENTRY_TOKEN}", "Accept": "application/json"}
    done = 0
    deadline = time.monotonic() + seconds

    async def loop(lane: int) -> None:
        nonlocal done
        n = lane
        while time.monotonic() < deadline:
            url = f"{sentry_url}/api/0/organizations/{ORG}/issues/{n % ISSUES + 1}/"
            response = await client.put(url, json={"status": "resolved"}, headers=headers,
                                        timeout=httpx.Timeout(10.0))
            assert response.status_code == 200, response.status_code
            done += 1
            n += WORKER_CONCURRENCY

    try:
        started, cpu = time.monotonic(), time.process_time()
        await asyncio.gather(*(loop(lane) for lane in range(WORKER_CONCURRENCY)))
        elapsed, cpu = time.monotonic() - started, time.process_time() - cpu
        return done / elapsed, cpu / max(done, 1) * 1e6
    finally:
        await client.aclose()


def measure_ceiling(seconds: float = 6.0) -> dict[str, tuple[float, float]]:
    """The ceiling, per event loop: the bare loop on the loop `serve` runs on ("serve":
    uvloop, which uvicorn takes when it is installed) and on the standard asyncio loop
    ("asyncio"), alternating in three slices each. The same client costs them differently
    (on this machine httpx's PUT costs more CPU under uvloop, and the standard loop's rate
    swings between runs), so each loop's figure is its best slice: (rate, CPU µs per PUT)."""
    sentry = FastSentry()
    try:
        runs: dict[str, list[tuple[float, float]]] = {"serve": [], "asyncio": []}
        for _ in range(3):
            runs["serve"].append(_run_like_serve(_bare_loop(sentry.url, seconds / 3)))
            runs["asyncio"].append(asyncio.run(_bare_loop(sentry.url, seconds / 3)))
    finally:
        sentry.close()
    return {name: max(got) for name, got in runs.items()}


def _run_like_serve(work: Coroutine[Any, Any, T]) -> T:
    """`work` on the event loop uvicorn gives `serve`: uvloop when installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(work)
    return uvloop.run(work)


def measure_hot_issue(work: Path) -> dict[str, Any]:
    """200 deliveries on one issue within 1 s, alternately into and out of "done"."""
    work.mkdir(parents=True, exist_ok=True)
    sentry = FastSentry()
    try:
        port = free_port()
        env = _env(work, port)
        prepare(env, sentry.url, issues=1)
        base = datetime.now(UTC) - timedelta(days=1)
        bodies = [delivery_body(1, base + timedelta(milliseconds=i), into_done=i % 2 == 0)
                  for i in range(HOT_DELIVERIES)]
        requests = requests_for(bodies, port, "hot")
        with served(serve_command(port), env, port, work / "serve.log"):
            started = time.monotonic()
            sent = asyncio.run(send_stream(port, requests, HOT_DELIVERIES / 1.0))
            drained = wait_drained(work / "e2e.db", started, limit=60)
        writes = sentry.writes()
    finally:
        sentry.close()
    expected = ["resolved" if i % 2 == 0 else "unresolved" for i in range(HOT_DELIVERIES)]
    done = processed_at(work / "e2e.db", "hot")
    return {
        "deliveries": HOT_DELIVERIES, "non202": sum(1 for s in sent.statuses if s != 202),
        "processed": len(done), "drain_s": drained,
        "in_order": [s for _, _, s in writes] == expected,
        "writes": len(writes),
        "met": drained is not None and drained < 2.0 and len(done) == HOT_DELIVERIES
        and [s for _, _, s in writes] == expected,
    }


def measure_ack_only(work: Path, seconds: int = 5) -> float:
    """wrk, 32 connections, against `serve` with its worker off: the ack-only rate."""
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = _env(work, port, SENTRY_JIRA_WORKER="off")
    prepare(env, "http://127.0.0.1:9", issues=1)
    headers = {"Authorization": f"JWT {webhook_token(CLIENT_KEY, SHARED_SECRET)}",
               "Content-Type": "application/json"}
    body = delivery_body(1, datetime.now(UTC))
    with served(serve_command(port), env, port, work / "serve.log") as app:
        target = Target(app.url + ISSUE_UPDATED_PATH, headers, body, app)
        check_once(target.url, {**headers, "X-Atlassian-Webhook-Identifier": "check"}, body, 202)
        [runs] = alternating_rounds([target], rounds=1, seconds=seconds, connections=32,
                                    workdir=work)
    return float(median_run(runs)["rps"])


# ------------------------------------------------------------------ the search


def search_rate(work: Path, ceiling: float, seconds: float, *, max_trials: int = 5,
                log: Any = print) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The highest rate meeting the targets among the trials: start at half the ceiling, go
    up by 1.25 while met (down by 0.8 while missed), then halve the gap between the best rate
    met and the lowest missed while trials remain and the gap exceeds 5 %."""
    trials: list[dict[str, Any]] = []
    met: float | None = None
    missed: float | None = None
    rate = max(10.0, round(ceiling * 0.5))
    best: dict[str, Any] | None = None
    for n in range(max_trials):
        figures = run_stream(work / f"trial-{n}", rate, seconds, trial=f"t{n}")
        trials.append(figures)
        log(trial_line(figures))
        if figures["met"]:
            met = rate if met is None else max(met, rate)
            if best is None or rate > best["rate"]:
                best = figures
        else:
            missed = rate if missed is None else min(missed, rate)
        if met is not None and missed is not None:
            if missed - met <= 0.05 * met:
                break
            rate = round((met + missed) / 2)
        elif missed is None:
            rate = round(rate * 1.25)
        else:
            rate = max(5.0, round(rate * 0.8))
    return best, trials


def trial_line(f: dict[str, Any]) -> str:
    drain = "never" if f["drain_s"] is None else f"{f['drain_s']:.2f} s"
    return (f"  {f['rate']:>6.0f}/s × {f['seconds']:.0f} s: {f['processed']}/{f['deliveries']} "
            f"processed, p50 {f['p50_s'] * 1000:.0f} ms, p95 {f['p95_s'] * 1000:.0f} ms, "
            f"max {f['max_s'] * 1000:.0f} ms, drained {drain} after the stream; "
            f"ack p99 {f['ack_p99_ms']:.1f} ms; RSS {f['rss_mb']:.0f} MB; sender late p99 "
            f"{f['sender_late_p99_ms']:.1f} ms, CPU {f['sender_cpu_share']:.0%}; server CPU "
            f"{f['server_cpu_share']:.0%}, {f['server_cpu_us']:.0f} µs a delivery — "
            f"{'met' if f['met'] else 'MISSED'}")
