"""`sentry-jira worker` beside a `serve` that runs none, and the journal / dead-letters CLI
(exit codes, refusals) — SPEC §3, §A."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.paths import REPO
from tests.support.process import running_server, server_env
from tests.support.sync_e2e import (
    TimedFakeSentry,
    bind,
    cli,
    deliver,
    install,
    journal,
    status_body,
    sync_env,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("each_engine")]  # §9: both engines

SECRET = "e2e-worker-shared-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
TOKEN = "sntrys_worker-e2e-token-never-shown-0123456789"


def test_SPEC3_a_separate_worker_process_syncs_and_health_follows_it(tmp_path: Path) -> None:
    with TimedFakeSentry() as sentry:
        sentry.add_org("acme", TOKEN)
        sentry.add_issue("acme", "1")
        env = sync_env(tmp_path, worker="off")
        tenant = install(env, "site-1", SECRET, "http://127.0.0.1:9")
        with running_server(env, log=tmp_path / "serve.log") as (url, _):
            no_worker = httpx.get(url + "/health", timeout=5)
            bind(url, tenant, "acme", sentry.url, TOKEN, {"APP-1": ["1"]},
                 status_map={"10000": {"resolve": ["10101"]}})
            deliver(url, "site-1", SECRET, status_body("1", "APP-1"), "d-1")
            queued = httpx.get(url + "/health", timeout=5).json()

            environ = server_env({k: v for k, v in env.items()})
            environ["PYTHONPATH"] = str(REPO / "src") + os.pathsep + environ["PYTHONPATH"]
            with open(tmp_path / "worker.log", "wb") as log:
                worker = subprocess.Popen([sys.executable, "-m", "adapters.cli.main", "worker"],
                                          env=environ, stdout=log, stderr=subprocess.STDOUT)
                try:
                    wait_for(lambda: sentry.issue("acme", "1").status == "resolved",
                             what="the worker process's write")
                    with_worker = httpx.get(url + "/health", timeout=5)
                    worker.send_signal(signal.SIGTERM)
                    code = worker.wait(timeout=15)
                finally:
                    if worker.poll() is None:
                        worker.kill()
            after = httpx.get(url + "/health", timeout=5)
            entries = journal(url, tenant)
    assert no_worker.status_code == 503
    assert no_worker.json() == {"status": "unavailable", "detail": "no sync worker is running",
                                "queue_depth": 0, "oldest_pending_seconds": None,
                                "dead_letters": 0}
    assert queued["queue_depth"] == 1
    assert with_worker.status_code == 200 and with_worker.json()["queue_depth"] == 0
    assert code == 0
    assert after.status_code == 503  # a cleanly stopped worker is forgotten at once
    assert [e["outcome"] for e in entries] == ["applied"]


def test_A_journal_and_dead_letter_commands_refuse_bad_input(tmp_path: Path) -> None:
    env = sync_env(tmp_path)
    tenant = install(env, "site-1", SECRET, "http://127.0.0.1:9")
    empty = cli(env, "journal", str(tenant))
    assert empty.returncode == 0  # §3 (#18): an empty result says so
    assert empty.stdout == f"no journal entries for tenant {tenant} yet\n"
    assert cli(env, "dead-letters", "list").returncode == 0
    for args, code in (
        (["journal", "999"], 1),
        (["journal", "x"], 1),
        (["journal", str(tenant), "--limit", "501"], 1),
        (["journal", str(tenant), "--issue-key", "not a key"], 1),
        (["dead-letters", "retry", "abc"], 1),
        (["dead-letters", "retry", "4242"], 1),
        (["dead-letters", "list", "--limit", "0"], 1),
        (["dead-letters", "bogus"], 2),
        (["journal"], 2),
    ):
        result = cli(env, *args)
        assert result.returncode == code, (args, result.stderr)
        assert result.stderr.startswith("sentry-jira:") or code == 2
    assert "no tenant 999" in cli(env, "journal", "999").stderr
    assert "no dead letter 4242" in cli(env, "dead-letters", "retry", "4242").stderr
    for command in (["journal"], ["dead-letters"], ["dead-letters", "retry"], ["worker"]):
        assert cli(env, *command, "--help").returncode == 0
