"""§3 metrics across processes (#18): a `serve` without a worker and a `sentry-jira worker
--metrics-port` on one database each expose their own counters. The serve's /metrics counts
the acknowledgement; the worker's loopback exporter counts the Sentry call and the W9 outcome
it made; neither holds the tenant's data or the Sentry token. A worker whose metrics port is
taken stops with one line, exit 2, before it opens the database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.builders import ADMIN_TOKEN
from tests.support.paths import REPO
from tests.support.process import free_port, running_server, server_env
from tests.support.sync_e2e import (
    TimedFakeSentry,
    bind,
    deliver,
    install,
    status_body,
    sync_env,
    wait_for,
)

pytestmark = pytest.mark.e2e

SECRET = "e2e-metrics-shared-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
TOKEN = "sntrys_metrics-e2e-token-never-shown-0123456789"
METRICS_TOKEN = "metrics-e2e-scrape-token-0123456789"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def worker_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "adapters.cli.main", "worker", *args]


def worker_environ(env: dict[str, str]) -> dict[str, str]:
    environ = server_env(dict(env))
    environ["PYTHONPATH"] = str(REPO / "src") + os.pathsep + environ["PYTHONPATH"]
    return environ


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> dict[str, str]:
    """§9: the engine's variables (none for SQLite; a fresh PostgreSQL database)."""
    if request.param == "sqlite":
        return {}
    url = request.getfixturevalue("postgres_cluster").database(migrated=False)
    return {"SENTRY_JIRA_DATABASE": url}


def test_3_serve_and_worker_processes_each_expose_their_own_metrics(
        tmp_path: Path, engine: dict[str, str]) -> None:
    """On PostgreSQL too: the Connect route's one-round-trip path reports its answer, and the
    worker's sync store is counted (§9)."""
    with TimedFakeSentry() as sentry:
        sentry.add_org("acme", TOKEN)
        sentry.add_issue("acme", "1")
        env = sync_env(tmp_path, worker="off") | {"SENTRY_JIRA_METRICS": "token",
                                                  "SENTRY_JIRA_METRICS_TOKEN": METRICS_TOKEN}
        env |= engine
        tenant = install(env, "metrics-site", SECRET, "http://127.0.0.1:9")
        scrape = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        port = free_port()
        with running_server(env, log=tmp_path / "serve.log") as (url, _):
            bind(url, tenant, "acme", sentry.url, TOKEN, {"APP-1": ["1"]},
                 status_map={"10000": {"resolve": ["10101"]}})
            deliver(url, "metrics-site", SECRET, status_body("1", "APP-1"), "d-1")
            with open(tmp_path / "worker.log", "wb") as log:
                worker = subprocess.Popen(worker_command("--metrics-port", str(port)),
                                          env=worker_environ(env), stdout=log,
                                          stderr=subprocess.STDOUT)
                try:
                    wait_for(lambda: sentry.issue("acme", "1").status == "resolved",
                             what="the worker process's write")
                    wait_for(lambda: b"sync_outcomes_total{" in _get(port), what="the exporter")
                    from_worker = _get(port).decode()
                    worker.send_signal(signal.SIGTERM)
                    code = worker.wait(timeout=15)
                finally:
                    if worker.poll() is None:
                        worker.kill()
            refused = httpx.get(url + "/metrics", timeout=5)
            from_serve = httpx.get(url + "/metrics", headers=scrape, timeout=5)
    assert code == 0
    assert refused.status_code == 401
    assert from_serve.status_code == 200
    serve_found, worker_found = samples(from_serve.text), samples(from_worker)
    # serve: the acknowledgement; no sync happened in this process
    assert value(serve_found, "sentry_jira_deliveries_total", transport="connect",
                 answer="accepted") == 1
    assert value(serve_found, "sentry_jira_sync_outcomes_total", kind="status",
                 outcome="applied") == 0
    assert value(serve_found, "sentry_jira_queue_depth") == 0  # the worker drained it
    # worker: the Sentry call and the W9 outcome; no acknowledgement
    assert value(worker_found, "sentry_jira_sync_outcomes_total", kind="status",
                 outcome="applied") == 1
    assert value(worker_found, "sentry_jira_outbound_calls_total", target="sentry",
                 status="2xx") >= 1
    assert value(worker_found, "sentry_jira_deliveries_total", transport="connect",
                 answer="accepted") == 0
    assert ("sentry_jira_queue_depth", ()) in worker_found
    for text in (from_serve.text, from_worker):
        for private in (TOKEN, SECRET, METRICS_TOKEN, "metrics-site", "acme", "APP-1"):
            assert private not in text, private


def test_3_by_default_serve_answers_metrics_without_auth(tmp_path: Path) -> None:
    """§3 "GET /metrics (no auth, no per-tenant labels)": a `serve` started without any
    SENTRY_JIRA_METRICS setting (an admin token configured) answers a scrape with no
    Authorization header and one with a bogus header alike, writes no refusal line, and its
    counters hold no tenant data."""
    env = sync_env(tmp_path, worker="off")
    assert not any(name.startswith("SENTRY_JIRA_METRICS") for name in env)
    install(env, "metrics-default-site", SECRET, "http://127.0.0.1:9")
    with running_server(env, log=tmp_path / "serve.log") as (url, _):
        deliver(url, "metrics-default-site", SECRET, status_body("1", "APP-7"), "d-1")
        bare = httpx.get(url + "/metrics", timeout=5)
        bogus = httpx.get(url + "/metrics", timeout=5,
                          headers={"Authorization": "Bearer not-a-token-of-this-server-0123"})
    assert (bare.status_code, bogus.status_code) == (200, 200)
    for response in (bare, bogus):
        assert response.headers["content-type"].startswith("text/plain; version=")
        found = samples(response.text)
        assert value(found, "sentry_jira_deliveries_total", transport="connect",
                     answer="accepted") == 1
        for private in (SECRET, ADMIN_TOKEN, "metrics-default-site", "APP-7"):
            assert private not in response.text, private
    log = (tmp_path / "serve.log").read_text()
    assert "metrics_refused" not in log
    assert "not-a-token-of-this-server" not in log
    assert "metrics=public" in log or '"metrics": "public"' in log  # the startup line


def test_3_the_worker_exporter_listens_on_loopback_only(tmp_path: Path) -> None:
    env = sync_env(tmp_path, worker="off")
    port = free_port()
    worker = subprocess.Popen(worker_command("--metrics-port", str(port)),
                              env=worker_environ(env), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: b"sentry_jira_" in _get(port), what="the exporter")
        # Bound to 127.0.0.1: the same port on the wildcard address is still free.
        with socket.socket() as probe:
            probe.bind(("127.0.0.2", port))
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=15)


def test_3_a_taken_metrics_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = sync_env(tmp_path, worker="off")
    database = Path(env["SENTRY_JIRA_DATABASE"])
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        result = subprocess.run(worker_command("--metrics-port", str(port)),
                                env=worker_environ(env), capture_output=True, text=True,
                                timeout=30)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--metrics-port" in lines[0] and "Traceback" not in lines[0]
    assert not database.exists()  # refused before the database was opened


def _get(port: int) -> bytes:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).content
    except httpx.HTTPError:
        return b""
