"""Hostile e2e for issue #11 items 1 and 3 against a real `sentry-jira serve`: a 24 KB
`baseUrl` host (L2), Sentry URLs the host patterns refuse at bind time (HTTP and CLI) and
before every call (§8.3), and the start-up refusal of a bad SENTRY_JIRA_SENTRY_HOSTS.

Reuses the hostile suite's running server (`h`: real data, table snapshots, egress counts,
leak scan at shutdown); the per-call refusal runs its own server with a worker."""

# ruff: noqa: F811 - tests take the imported hostile fixture `h` as a parameter
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_hostile import (  # noqa: F401 - `h` is the shared module fixture
    ORG,
    Hostile,
    assert_error,
    h,
    nothing_stored_nor_sent,
)
from tests.support.connect_tokens import INSTALLED
from tests.support.paths import REPO
from tests.support.process import free_port, running_server, server_env
from tests.support.sync_e2e import (
    TimedFakeSentry,
    admin,
    bind,
    deliver,
    install,
    journal,
    status_body,
    sync_env,
    wait_for,
)

pytestmark = pytest.mark.e2e

LONG_HOST = "a." * 12_000 + "b"  # 12,000 labels, 24 KB
SECRET = "e2e-outbound-shared-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
SENTRY_TOKEN = "sntrys_outbound-e2e-token-never-shown-0123456789"

# §8.3 with SENTRY_JIRA_SENTRY_HOSTS unset (the hostile server): only public https hosts.
REFUSED_SENTRY_URLS = [
    "http://127.0.0.1:9000",
    "https://127.0.0.1",
    "https://10.0.0.5",
    "https://172.16.0.1",
    "https://192.168.1.1",
    "https://169.254.169.254",
    "https://[fe80::1]",
    "https://0.0.0.0",
    "https://[::]",
    "https://[::1]",
    "https://[::ffff:127.0.0.1]",
    "https://[::ffff:a9fe:a9fe]",
    "https://2130706433",
    "https://127.1",
    "https://0x7f.1",
    "https://0x7f000001",
    "https://localhost",
    "https://metadata.localhost",
    "http://sentry.example.com",
    "https://" + "a." * 150 + "sentry.io",  # a host over 253 characters
]


# -- item 1: the quadratic baseUrl matcher ---------------------------------------------------


def test_issue11_L2_a_24kb_base_url_host_is_400_at_once_while_health_answers(h: Hostile) -> None:
    body = json.dumps(h.install_body(baseUrl=f"https://{LONG_HOST}")).encode()
    token = h.lifecycle_token(INSTALLED, kid="kid-unfetched")
    answers: list[tuple[int, float]] = []

    def flood() -> None:
        with httpx.Client(base_url=h.url, timeout=60) as own:
            for _ in range(5):
                started = time.monotonic()
                response = own.post(
                    INSTALLED,
                    content=body,
                    headers={"Content-Type": "application/json", "Authorization": f"JWT {token}"},
                )
                answers.append((response.status_code, time.monotonic() - started))

    health: list[float] = []
    with nothing_stored_nor_sent(h):
        sender = threading.Thread(target=flood)
        sender.start()
        with httpx.Client(base_url=h.url, timeout=60) as fresh:
            while sender.is_alive() or not health:
                started = time.monotonic()
                assert fresh.get("/health").status_code == 503  # answers: no worker here
                health.append(time.monotonic() - started)
        sender.join()
    assert [status for status, _ in answers] == [400] * 5
    # Generous on a loaded machine: the quadratic matcher held the loop ~7 s per body.
    assert max(seconds for _, seconds in answers) < 2.0
    assert max(health) < 2.0
    h.still_serving()


# -- item 3: Sentry URLs at bind time --------------------------------------------------------


@pytest.mark.parametrize("sentry_url", REFUSED_SENTRY_URLS)
def test_issue11_8_3_bind_refuses_a_sentry_url_the_patterns_do_not_allow(
    h: Hostile, sentry_url: str
) -> None:
    body = {"sentry_url": sentry_url, "sentry_token": h.remember("sentry", "sntrys_" + "x" * 24)}
    with nothing_stored_nor_sent(h):
        for org in ("newcorp", ORG):  # creating a binding, and moving an existing one
            refused = h.admin("PUT", f"/api/tenants/{h.tenant_id}/orgs/{org}", body)
            assert_error(refused, 400)
            assert "SENTRY_JIRA_SENTRY_HOSTS" in refused.json()["detail"]
            assert sentry_url not in refused.text


def test_issue11_8_3_cli_orgs_bind_refuses_a_loopback_sentry_url(h: Hostile) -> None:
    environ = server_env(
        {
            **h.database_env(),
            "SENTRY_JIRA_SENTRY_TOKEN": h.remember("cli sentry", "sntrys_cli_" + "y" * 24),
        }
    )
    environ["PYTHONPATH"] = str(REPO / "src") + os.pathsep + environ.get("PYTHONPATH", "")
    with nothing_stored_nor_sent(h):
        for url in ("http://127.0.0.1:9000", "https://169.254.169.254", "https://2130706433"):
            result = subprocess.run(
                [sys.executable, "-m", "adapters.cli.main", "orgs", "bind", str(h.tenant_id),
                 "newcorp", "--sentry-url", url],
                env=environ, capture_output=True, text=True, timeout=60,
            )
            assert result.returncode == 1, result.stderr
            assert "SENTRY_JIRA_SENTRY_HOSTS" in result.stderr


# -- item 3: before every call, and at start-up ----------------------------------------------


@pytest.mark.usefixtures("each_engine")  # §9: the stored binding on either engine
def test_issue11_8_3_a_binding_the_patterns_no_longer_allow_is_a_dead_letter_unsent(
    tmp_path: Path,
) -> None:
    with TimedFakeSentry() as sentry:
        sentry.add_org("acme", SENTRY_TOKEN)
        sentry.add_issue("acme", "1")
        allowed = sync_env(tmp_path)  # names the loopback fake Sentry
        tenant = install(allowed, "site-1", SECRET, "http://127.0.0.1:9")
        with running_server(allowed, log=tmp_path / "first.log") as (url, _):
            bind(url, tenant, "acme", sentry.url, SENTRY_TOKEN, {"APP-1": ["1"]},
                 status_map={"10000": {"resolve": ["10101"]}})
        # The operator narrows the patterns; the stored binding stays as it was.
        narrowed = sync_env(tmp_path, sentry_hosts="https://*.sentry.io")
        log = tmp_path / "second.log"
        with running_server(narrowed, log=log) as (url, _):
            deliver(url, "site-1", SECRET, status_body("1", "APP-1"), "d-1")

            def dead_letters() -> list[dict[str, object]]:
                return list(admin(url, "GET", "/api/dead-letters").json())

            wait_for(lambda: len(dead_letters()) == 1, what="the dead letter")
            letter = dead_letters()[0]
            entries = journal(url, tenant)
    assert sentry.requests == []  # refused before connecting: nothing reached Sentry
    assert letter["attempts"] == 1  # not retried: the patterns will not change by retrying
    assert "SENTRY_JIRA_SENTRY_HOSTS" in str(letter["last_error"])
    assert [e["outcome"] for e in entries] == ["dead"]
    text = log.read_text()
    warning = [line for line in text.splitlines() if "SENTRY_JIRA_SENTRY_HOSTS" in line]
    assert any("acme" in line and f"tenant {tenant}" in line for line in warning), text
    assert SENTRY_TOKEN not in text


def test_issue11_a_bad_sentry_hosts_pattern_stops_start_up_naming_it(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "adapters.cli.main", "serve", "--port", str(free_port())]
    for value in ("sentry.io", "https://127.1", "https://*.sentry.io/path"):
        environ = server_env(
            {"SENTRY_JIRA_DATABASE": str(tmp_path / "db.sqlite"), "SENTRY_JIRA_SENTRY_HOSTS": value}
        )
        environ["PYTHONPATH"] = str(REPO / "src") + os.pathsep + environ.get("PYTHONPATH", "")
        result = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=30)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "SENTRY_JIRA_SENTRY_HOSTS" in lines[0]
    assert not (tmp_path / "db.sqlite").exists()
