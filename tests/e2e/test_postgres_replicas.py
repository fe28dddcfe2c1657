"""SPEC §9 on several machines' worth of processes: three `serve` and two `sentry-jira worker`
processes on one PostgreSQL database (different ports, as if on different machines).

Deliveries spread over the replicas are each synced, in W6 order per issue; kill -9 of a
worker and of a replica mid-stream loses nothing (leases run out, another worker takes
over); stopping PostgreSQL answers 503 with `Retry-After` (W10) and the same processes
recover when it is back, without a restart.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.describe import ISSUE_UPDATED_PATH
from tests.support.paths import REPO
from tests.support.postgres import PostgresCluster
from tests.support.process import running_server, server_env
from tests.support.sync_e2e import (
    TimedFakeSentry,
    bind,
    deliver,
    install,
    status_body,
    sync_env,
    wait_for,
)
from tests.support.webhooks import signed_delivery

pytestmark = pytest.mark.e2e

SECRET = "e2e-replicas-shared-secret-0123456789-abcdefghijklmnopqrstuvw"
TOKEN = "sntrys_replicas-e2e-token-never-shown-0123456789"
ISSUES = 12
STEPS = (("10101", "3"), ("3", "10101"), ("10101", "3"))  # resolve, unresolve, resolve
STATUS_MAP = {"10000": {"resolve": ["10101"], "unresolve": ["3"]}}


@contextlib.contextmanager
def worker_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    environ = server_env(env)
    environ["PYTHONPATH"] = str(REPO / "src") + os.pathsep + environ["PYTHONPATH"]
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "adapters.cli.main", "worker"],
                                env=environ, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def collapsed(bodies: list[object]) -> list[object]:
    """Consecutive repeats as one: a worker killed after Sentry accepted a write and before
    its record committed repeats that write once (docs/operations.md), never another."""
    out: list[object] = []
    for body in bodies:
        if not out or out[-1] != body:
            out.append(body)
    return out


def test_s9_three_replicas_two_workers_kill_9_and_a_database_outage_lose_nothing(
    tmp_path: Path, postgres_cluster: PostgresCluster,
) -> None:
    env = sync_env(tmp_path, database=postgres_cluster.database(migrated=False),
                   database_pool_size="4", worker_lease_seconds="2")
    quiet = {**env, "SENTRY_JIRA_WORKER": "off"}
    with TimedFakeSentry() as sentry:
        sentry.add_org("acme", TOKEN)
        for n in range(ISSUES):
            sentry.add_issue("acme", str(5000 + n))
        with running_server(env, log=tmp_path / "a.log") as (a, _), \
                running_server(quiet, log=tmp_path / "b.log") as (b, _), \
                running_server(quiet, log=tmp_path / "c.log") as (c, c_proc), \
                worker_process(quiet, tmp_path / "w1.log") as w1, \
                worker_process(quiet, tmp_path / "w2.log"):
            tenant = install(env, "site-1", SECRET, "http://127.0.0.1:9")
            bind(a, tenant, "acme", sentry.url, TOKEN,
                 {f"APP-{n}": [str(5000 + n)] for n in range(ISSUES)}, status_map=STATUS_MAP)

            replicas = [a, b, c]
            sent = 0
            for step, (to, frm) in enumerate(STEPS):
                for n in range(ISSUES):
                    body = status_body(str(9000 + n), f"APP-{n}", to=to, frm=frm,
                                       updated=f"2025-11-28T09:00:0{step}.000+0000")
                    deliver(replicas[sent % len(replicas)], "site-1", SECRET, body,
                            f"d-{n}-{step}")
                    sent += 1
                if step == 0:  # mid-stream: a worker and a replica die without a word
                    w1.send_signal(signal.SIGKILL)
                    c_proc.send_signal(signal.SIGKILL)
                    w1.wait(timeout=10)
                    c_proc.wait(timeout=10)
                    replicas = [a, b]

            def synced() -> bool:
                return all(collapsed([r.json for _, r in sentry.puts_to("acme", str(5000 + n))])
                           == [{"status": "resolved"}, {"status": "unresolved"},
                               {"status": "resolved"}] for n in range(ISSUES))
            wait_for(synced, timeout=45, what="every issue synced in order")

            # W10: PostgreSQL stops → 503 with Retry-After, nothing half-written; it comes
            # back → the same processes accept again, no restart.
            late = status_body("9000", "APP-0", to="3", frm="10101",
                               updated="2025-11-28T09:00:09.000+0000")
            headers, raw = signed_delivery("site-1", SECRET, late, delivery_id="late")
            postgres_cluster.pg_ctl_stop("fast")
            try:
                down = httpx.post(a + ISSUE_UPDATED_PATH, content=raw, headers=headers,
                                  timeout=10)
                health_down = httpx.get(b + "/health", timeout=10)
            finally:
                postgres_cluster.pg_ctl_start()

            def accepted() -> bool:
                answer = httpx.post(b + ISSUE_UPDATED_PATH, content=raw, headers=headers,
                                    timeout=10)
                return answer.status_code == 202
            wait_for(accepted, timeout=20, what="a replica accepting again")
            wait_for(lambda: len(collapsed([r.json for _, r in sentry.puts_to("acme", "5000")]))
                     == 4, timeout=20, what="the late delivery synced")
            # The other replica recovers too: at most a few 503s (Jira sends again) while its
            # pool replaces the connections the restart broke.
            answers: list[httpx.Response] = []

            def answered() -> bool:
                answers.append(httpx.post(a + ISSUE_UPDATED_PATH, content=raw, headers=headers,
                                          timeout=10))
                return answers[-1].status_code != 503
            wait_for(answered, timeout=20, what="the other replica answering again")
            again = answers[-1]

    assert down.status_code == 503 and down.headers.get("retry-after") == "1", down.text
    assert health_down.status_code == 503
    assert again.json() == {"status": "duplicate"}  # "late" went in once, after the outage
    assert len(answers) <= 5
    assert sentry.issue("acme", "5000").status == "unresolved"
    for n in range(1, ISSUES):
        assert sentry.issue("acme", str(5000 + n)).status == "resolved"
