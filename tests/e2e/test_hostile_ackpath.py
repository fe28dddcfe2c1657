"""Hostile deliveries against real `sentry-jira serve` processes (issue #11 items 6, 7, 9):
signed but odd input is a 4xx and stores nothing; a flood of copies of one delivery through
two processes sharing the database leaves exactly one `duplicate` journal entry (W3, W9).
Each test runs on SQLite and on a fresh PostgreSQL database (§9)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.describe import ISSUE_UPDATED_PATH as PATH
from tests.e2e.test_ack_path import CLIENT, SECRET, env_for
from tests.support.engines import Storage, Where, query
from tests.support.process import running_server
from tests.support.sync_e2e import install
from tests.support.together import side_by_side
from tests.support.webhooks import issue_updated_body, signed_delivery

pytestmark = pytest.mark.e2e


def duplicate_entries(where: Where) -> list[tuple[Any, ...]]:
    return query(where, "SELECT kind, outcome, delivery_id, issue_key FROM sync_journal "
                        "WHERE outcome = 'duplicate' ORDER BY id")


def pending_deliveries(where: Where) -> list[tuple[Any, ...]]:
    return query(where, "SELECT delivery_id, state FROM deliveries ORDER BY id")


def engine_env(tmp_path: Path, storage: Storage) -> tuple[dict[str, str], Where]:
    """test_ack_path's environment on `storage`, with the tenant installed."""
    env = {**env_for(tmp_path), **storage.env(tmp_path, "db.sqlite")}
    install(env, CLIENT, SECRET, "https://acme.atlassian.net")
    return env, storage.where(tmp_path, "db.sqlite")


def test_W9_a_flood_of_copies_through_two_processes_is_one_duplicate_journal_entry(
    tmp_path: Path, storage: Storage,
) -> None:
    env, db_file = engine_env(tmp_path, storage)
    headers, body = signed_delivery(CLIENT, SECRET, delivery_id="flooded")
    with running_server(env) as (first, _), running_server(env) as (second, _):
        accepted = httpx.post(first + PATH, content=body, headers=headers, timeout=10)
        assert accepted.status_code == 202
        answers: list[int] = []
        lock = threading.Lock()

        def send(url: str) -> None:
            for _ in range(10):
                status = httpx.post(url + PATH, content=body, headers=headers,
                                    timeout=10).status_code
                with lock:
                    answers.append(status)

        threads = [threading.Thread(target=send, args=(url,))
                   for url in (first, second, first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert answers == [200] * 40
    assert pending_deliveries(db_file) == [("flooded", "pending")]
    assert duplicate_entries(db_file) == [("delivery", "duplicate", "flooded", "APP-123")]


def _over_long_key() -> dict[str, Any]:
    body = issue_updated_body()
    body["issue"]["key"] = "APP-" + "9" * 300
    return body


def _list_field() -> dict[str, Any]:
    body = issue_updated_body()
    body["changelog"]["items"] = [{"field": ["status"], "to": "1"}]
    return body


# (name, body, token claims, expected status)
ODD: list[tuple[str, Any, dict[str, Any], int]] = [
    ("exp-10e20", None, {"exp": 10**20}, 401),
    ("lives-3601s", None, {"lifetime": 3601}, 401),
    ("key-over-255", _over_long_key(), {}, 400),
    ("list-field-only", _list_field(), {}, 200),
    ("deep-json", b"[" * 100_000 + b"]" * 100_000, {}, 400),
]


def test_odd_signed_deliveries_are_4xx_and_store_nothing_on_a_real_serve(
    tmp_path: Path, storage: Storage,
) -> None:
    env, where = engine_env(tmp_path, storage)
    with running_server(env) as (url, proc):
        for name, body, claims, status in ODD:
            headers, raw = signed_delivery(CLIENT, SECRET, body, delivery_id=f"odd-{name}",
                                           **claims)
            response = httpx.post(url + PATH, content=raw, headers=headers, timeout=10)
            assert response.status_code == status, (name, response.text)
            assert SECRET not in response.text
        assert proc.poll() is None  # still serving
        assert httpx.get(url + "/health", timeout=10).status_code in (200, 503)
    assert pending_deliveries(where) == []


def _with_issue(**values: str) -> dict[str, Any]:
    body = issue_updated_body()
    body["issue"].update(values)
    return body


def test_W2_a_nul_in_the_issue_key_or_id_is_400_and_spoils_no_delivery_sent_beside_it(
    tmp_path: Path, storage: Storage,
) -> None:
    """On PostgreSQL, concurrent deliveries share one insert (group commit): a value the
    database cannot hold (NUL in text) must be refused on its own, before the batch, so the
    deliveries sent beside it are still 202 and recorded. A NUL elsewhere in the kept record
    is only bytes of the stored body, and is recorded as sent."""
    env, where = engine_env(tmp_path, storage)
    poisoned = {"nul-key": _with_issue(key="APP-\u0000"), "nul-id": _with_issue(id="20417\u0000")}
    nul_name = issue_updated_body()
    for item in nul_name["changelog"]["items"]:
        if item["field"] == "status":
            item["toString"] = "Done\u0000"
    answers: dict[str, int] = {}

    def send(url: str, name: str, body: Any) -> int:
        headers, raw = signed_delivery(CLIENT, SECRET, body, delivery_id=name)
        return httpx.post(url + PATH, content=raw, headers=headers, timeout=10).status_code

    with running_server(env) as (url, _):
        for round_ in range(5):
            jobs: dict[str, Any] = {f"good-{round_}-{n}": None for n in range(8)}
            jobs |= {f"{name}-{round_}": body for name, body in poisoned.items()}
            answers |= side_by_side(lambda name, jobs=jobs: send(url, name, jobs[name]), jobs)
        answers["nul-in-a-name"] = send(url, "nul-in-a-name", nul_name)
    good = sorted(name for name in answers if name.startswith("good-"))
    assert {name: answers[name] for name in good} == dict.fromkeys(good, 202)
    assert {answers[name] for name in answers if name.startswith("nul-key")} == {400}
    assert {answers[name] for name in answers if name.startswith("nul-id")} == {400}
    assert answers["nul-in-a-name"] == 202
    stored = sorted(row[0] for row in pending_deliveries(where))
    assert stored == sorted([*good, "nul-in-a-name"])
    body = query(where, "SELECT body FROM deliveries WHERE delivery_id = 'nul-in-a-name'")[0][0]
    assert b'"Done\\u0000"' in bytes(body)


def test_W1_a_nul_in_an_unverified_issuer_is_401_and_spoils_no_lookup_beside_it(
    tmp_path: Path, storage: Storage,
) -> None:
    """The issuer is read before any signature can be checked (it names the secret). On
    PostgreSQL concurrent tenant reads share one statement: an issuer the database cannot
    hold must be refused alone, so the verified requests beside it (each `ignored` answer is
    confirmed by a fresh read, adapters/http/connect/remembered.py) still get theirs."""
    env, where = engine_env(tmp_path, storage)
    ignored = issue_updated_body(webhookEvent="jira:issue_created")
    answers: dict[str, int] = {}

    def send(url: str, name: str) -> int:
        client_key = CLIENT + "\u0000" if name.startswith("nul-") else CLIENT
        headers, raw = signed_delivery(client_key, SECRET, ignored, delivery_id=name)
        return httpx.post(url + PATH, content=raw, headers=headers, timeout=10).status_code

    with running_server(env) as (url, _):
        for round_ in range(5):
            names = [f"good-{round_}-{n}" for n in range(8)]
            names += [f"nul-{round_}-{n}" for n in range(2)]
            answers |= side_by_side(lambda name: send(url, name), names)
    assert {answers[name] for name in answers if name.startswith("good-")} == {200}
    assert {answers[name] for name in answers if name.startswith("nul-")} == {401}
    assert pending_deliveries(where) == []
