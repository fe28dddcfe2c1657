"""Hostile use of the webhook transport against real `sentry-jira serve` processes (#13; SPEC
§8.0, §8.1, §3 logs, W3, W10), beside tests/e2e/test_hostile_webhook.py (the refusal matrix):

- a captured body replayed under 200 new identifier headers stays one delivery;
- 1000 forged signatures over one keep-alive connection: all the same 401, nothing recorded,
  and the site still verifies its own deliveries afterwards;
- a 10 MB chunked body is answered 413 once it passes the limit, before the signature;
- the credential check follows no redirect (the redirect target sees no connection);
- an identifier header built to forge log lines never reaches the log at the default level
  (control characters are refused by the HTTP parser), and no secret or credential reaches the
  log, any answer or the database files;
- a removal or a rotation made by another process (the CLI) is seen by the running server on
  its next request (no stale secret cache).

The module's server runs on SQLite, then on a fresh PostgreSQL database (§9).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from tests.e2e.test_hostile import random_secret
from tests.e2e.test_story import run_cli
from tests.support.engines import Storage, Where, stored_bytes, table_rows
from tests.support.fake_jira import FakeJira, Reply
from tests.support.hub_signature import hub_signature
from tests.support.leak_scan import find_leaks
from tests.support.process import running_server
from tests.support.raw_http import chunk, connect, read_response, request_head, send_until_answered
from tests.support.webhook_sites import (
    SITES,
    admin_call,
    site_request,
    webhook_env,
    webhook_path,
)
from tests.support.webhooks import issue_updated_body

pytestmark = pytest.mark.e2e

EMAIL = "jira-bot@example.com"
LIMIT = 65_536  # SENTRY_JIRA_MAX_BODY_BYTES of this server


@attrs.define(repr=False)  # a failing assertion must not print the secrets it holds
class Served:
    url: str
    port: int
    directory: Path
    database: Where
    log: Path
    env: dict[str, str]
    jira: FakeJira
    site_id: int = 0
    secret: str = ""
    secrets: dict[str, str] = attrs.Factory(dict)
    bodies: list[bytes] = attrs.Factory(list)
    changelog: int = 0

    def remember(self, label: str, value: str) -> str:
        self.secrets[f"{label} #{len(self.secrets)}"] = value
        return value

    def body(self) -> bytes:
        """A fresh relevant delivery (W4), never sent before."""
        self.changelog += 1
        body = issue_updated_body("status")
        body["changelog"]["id"] = f"hostile-{self.changelog}-{secrets.token_hex(4)}"
        return json.dumps(body).encode()

    def post(self, raw: bytes, signature: str | None, *, site_id: int | None = None,
             client: httpx.Client | None = None, **headers: str) -> httpx.Response:
        sent = {"Content-Type": "application/json", **headers}
        if signature is not None:
            sent["X-Hub-Signature"] = signature
        where = self.url + webhook_path(self.site_id if site_id is None else site_id)
        response = (client or httpx).post(where, content=raw, headers=sent,  # type: ignore[attr-defined]
                                          timeout=15)
        self.bodies.append(response.content)
        return response

    def deliveries(self) -> list[tuple[Any, ...]]:
        return table_rows(self.database)["deliveries"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, module_storage: Storage
           ) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("hostile-webhook-route")
    log = directory / "serve.log"
    env = webhook_env(directory, worker=False, SENTRY_JIRA_MAX_BODY_BYTES=str(LIMIT),
                      **module_storage.env(directory))
    with FakeJira("unused-app-key") as jira, running_server(env, log=log) as (url, _):
        token = random_secret("api-token")
        jira.add_cloud_token_site("hostile-cloud", EMAIL, token)
        served = Served(url=url, port=int(url.rsplit(":", 1)[1]), directory=directory,
                        database=module_storage.where(directory), log=log, env=env, jira=jira)
        served.remember("api token", token)
        created = admin_call(url, "POST", SITES, site_request("cloud", jira.url, token, EMAIL))
        assert created.status_code == 201, created.text
        served.site_id = int(created.json()["id"])
        served.secret = served.remember("webhook secret", created.json()["webhook_secret"])
        yield served
    places = {"server log": log.read_bytes(), **stored_bytes(served.database, directory)}
    places.update({f"answer {n}": body for n, body in enumerate(served.bodies)})
    assert [f"{x.secret} in {x.place}" for x in find_leaks(served.secrets, places)] == []


def test_8_1_a_body_replayed_under_200_new_identifiers_is_one_delivery(served: Served) -> None:
    raw = served.body()
    signature = hub_signature(raw, served.secret)
    before = len(served.deliveries())
    first = served.post(raw, signature, **{"X-Atlassian-Webhook-Identifier": "original"})
    assert first.status_code == 202, first.text
    with httpx.Client(timeout=15) as client:
        for n in range(200):
            replay = served.post(raw, signature, client=client,
                                 **{"X-Atlassian-Webhook-Identifier": f"replay-{n}-{n * 7919}"})
            assert (replay.status_code, replay.json()) == (200, {"status": "duplicate"})
    assert len(served.deliveries()) == before + 1


def test_8_1_a_flood_of_forged_signatures_is_all_401_and_the_site_still_verifies(
    served: Served,
) -> None:
    rows = table_rows(served.database)
    raw = served.body()
    answered: dict[int, int] = {}
    deadline = time.monotonic() + 120  # the bug costs seconds per request, the fix microseconds
    with httpx.Client(timeout=15) as client:  # one keep-alive connection
        for n in range(1000):
            assert time.monotonic() < deadline, "1000 forged deliveries did not finish in 120 s"
            forged = "sha256=" + secrets.token_hex(32)
            if n % 3 == 1:
                forged = forged.upper().replace("SHA256=", "sha256=")
            elif n % 3 == 2:
                forged = hub_signature(raw, f"guess-{n}")
            response = served.post(raw, forged, client=client)
            answered[response.status_code] = answered.get(response.status_code, 0) + 1
    assert answered == {401: 1000}
    assert table_rows(served.database) == rows  # nothing recorded
    assert served.post(raw, hub_signature(raw, served.secret)).status_code == 202


def test_8_0_a_10_MB_chunked_body_is_413_once_past_the_limit(served: Served) -> None:
    rows = table_rows(served.database)
    headers = [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked"),
               ("X-Hub-Signature", "sha256=" + "0" * 64)]
    piece = chunk(b"[" * 65_536)
    pieces = [piece] * (LIMIT // 65_536 + 16)  # about 1 MiB of the 10 MB; no final chunk, ever
    deadline = time.monotonic() + 30
    with contextlib.closing(connect(served.port, timeout=30)) as sock:
        sock.sendall(request_head("POST", webhook_path(served.site_id), headers))
        sent, _ = send_until_answered(sock, pieces, deadline=deadline)
        response = read_response(sock, deadline=deadline)
    assert sent < 10 * 1024 * 1024
    assert response.status == 413, response
    assert set(json.loads(response.body)) == {"detail"}
    assert table_rows(served.database) == rows


def test_8_1_the_credential_check_follows_no_redirect(served: Served) -> None:
    rows = table_rows(served.database)
    with FakeJira("unused-app-key") as elsewhere, FakeJira("unused-app-key") as jira:
        token = served.remember("api token", random_secret("redirected-token"))
        site = jira.add_cloud_token_site("redirecting", EMAIL, token)
        site.reply("myself", Reply.redirect(elsewhere.url + "/rest/api/3/myself", status=307))
        response = admin_call(served.url, "POST", SITES,
                              site_request("cloud", jira.url, token, EMAIL))
        served.bodies.append(response.content)
        assert response.status_code == 502, response.text
        assert [r.route for r in jira.requests] == ["myself"]
        assert elsewhere.connections == 0
    assert table_rows(served.database) == rows


def test_3_an_identifier_header_built_to_forge_log_lines_stays_out_of_the_log(
    served: Served,
) -> None:
    # Control characters never get past the HTTP parser (400, nothing recorded)…
    rows = table_rows(served.database)
    raw = served.body()
    refused = served.post(raw, hub_signature(raw, served.secret),
                          **{"X-Atlassian-Webhook-Identifier": "a\x1b[2J\x08b"})
    assert refused.status_code == 400
    assert table_rows(served.database) == rows
    # …and what does (obs-text: NEL and LINE SEPARATOR in UTF-8, quotes, a fake event) is
    # logged on its own line, escaped and cut short.
    marker = secrets.token_hex(8).encode()
    forged = (marker + b"\xc2\x85\xe2\x80\xa8\" level=error event=admin_token_leaked "
              + b"x" * 400)
    raw = served.body()
    response = httpx.post(served.url + webhook_path(served.site_id), content=raw, timeout=15,
                          headers=[(b"Content-Type", b"application/json"),
                                   (b"X-Hub-Signature", hub_signature(raw, served.secret).encode()),
                                   (b"X-Atlassian-Webhook-Identifier", forged)])
    served.bodies.append(response.content)
    assert response.status_code == 202, response.text
    # At the default level (info) the untrusted header is not logged at all; its debug line
    # is escaped and cut short (tests/http/test_webhook_route.py checks that line).
    time.sleep(0.5)
    logged = served.log.read_bytes()
    assert marker not in logged and b"admin_token_leaked" not in logged
    assert b"\xe2\x80\xa8" not in logged


def test_8_1_removal_and_rotation_by_another_process_are_seen_at_once(served: Served) -> None:
    with FakeJira("unused-app-key") as jira:
        token = served.remember("api token", random_secret("cli-token"))
        jira.add_cloud_token_site("cross-process", EMAIL, token)
        created = admin_call(served.url, "POST", SITES,
                             site_request("cloud", jira.url, token, EMAIL))
        assert created.status_code == 201, created.text
        site_id = int(created.json()["id"])
        first = served.remember("webhook secret", created.json()["webhook_secret"])

        def status(secret: str) -> int:
            raw = served.body()
            return served.post(raw, hub_signature(raw, secret), site_id=site_id).status_code

        assert status(first) == 202
        rotated = run_cli(served.env, "sites", "rotate-secret", str(site_id), "--json")
        assert rotated.returncode == 0, rotated.stderr
        second = served.remember("webhook secret", json.loads(rotated.stdout)["webhook_secret"])
        assert (status(first), status(second)) == (202, 202)  # the hour of overlap
        rotated_again = run_cli(served.env, "sites", "rotate-secret", str(site_id), "--json")
        third = served.remember("webhook secret",
                                json.loads(rotated_again.stdout)["webhook_secret"])
        assert (status(first), status(second), status(third)) == (401, 202, 202)
        removed = run_cli(served.env, "sites", "remove", str(site_id))
        assert removed.returncode == 0, removed.stderr
        assert (status(second), status(third)) == (401, 401)
