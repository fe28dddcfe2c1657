"""SPEC §3 logs through a real `sentry-jira serve`, once with SENTRY_JIRA_LOG_FORMAT=json and
once with text (#18).

The hostile suite's story (tests/e2e/test_hostile.py: signed installs and a rotation, an
org bound with a Sentry token, a link, search tokens, an uninstall, a delivery, a search)
followed by refusals (forged lifecycle calls and webhooks, wrong admin tokens). Then every
line the server wrote must be one JSON object with `ts`, `level` and `event` (or one text
line `ts LEVEL event …`), the events of the story must be there, and no secret, token or JWT
the story used may appear — in either format.

Before the server stops, `/metrics` is scraped (§3 metrics, in the opt-in
SENTRY_JIRA_METRICS=token mode): once without a token (401) and once with the admin token;
its counters must show the story's deliveries and refusals, and it must hold no tenant data,
secret or token either.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.test_hostile import (
    APP_KEY,
    CLIENT,
    INSTALLED,
    Hostile,
    random_secret,
    server_env,
    set_up_real_data,
)
from tests.support.connect_tokens import signing_key
from tests.support.fake_jira import FakeJira
from tests.support.key_server import running_key_server
from tests.support.leak_scan import find_leaks
from tests.support.process import free_port, running_server

Story = tuple[Hostile, list[str], str, str]  # the story, its log lines, /metrics, the format


def parsed(line: str, fmt: str) -> dict[str, Any]:
    """A log line's timestamp, level and event (and, in JSON, its fields)."""
    if fmt == "json":
        value: dict[str, Any] = json.loads(line)
        return value
    ts, level, name = line.split(" ", 3)[:3]
    return {"ts": ts, "level": level.lower(), "event": name}

pytestmark = pytest.mark.e2e

FORGED_LIFECYCLE = 200  # more than the burst of the refusal lines


@pytest.fixture(scope="module", params=["json", "text"])
def story(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
          ) -> Iterator[Story]:
    fmt: str = request.param
    directory = tmp_path_factory.mktemp(f"logs-story-{fmt}")
    admin_token = random_secret("admin")
    log = directory / "server.log"
    with running_key_server() as keys, FakeJira(APP_KEY) as jira:
        keys.serve("kid-1", signing_key().public_pem)
        env = server_env(directory, keys, admin_token) | {"SENTRY_JIRA_LOG_FORMAT": fmt,
                                                          "SENTRY_JIRA_METRICS": "token"}
        port = free_port()
        with (
            running_server(env, port=port, log=log) as (url, _),
            httpx.Client(base_url=url, timeout=10, follow_redirects=False) as client,
        ):
            shared_secret = random_secret("shared")
            h = Hostile(
                url=url, port=port, directory=directory, database=directory / "sentry-jira.db",
                log=log, keys=keys, jira=jira, site=jira.add_site(CLIENT, shared_secret),
                client=client, admin_token=admin_token, shared_secret=shared_secret,
                old_secret=random_secret("old-shared"), gone_secret=random_secret("gone"),
                sentry_token=random_secret("sntrys"),
            )
            for label in ("admin_token", "shared_secret", "old_secret", "gone_secret",
                          "sentry_token"):
                h.remember(label, getattr(h, label))
            set_up_real_data(h)
            refuse_things(h)
            assert client.get("/metrics").status_code == 401
            scraped = client.get("/metrics", headers={"Authorization": f"Bearer {admin_token}"})
            assert scraped.status_code == 200, scraped.text
        # stopped: the log is complete (shutdown lines included)
        yield h, log.read_text().splitlines(), scraped.text, fmt


def refuse_things(h: Hostile) -> None:
    for _ in range(FORGED_LIFECYCLE):  # signed, but with a wrong key: the signature fails
        token = h.lifecycle_token(INSTALLED, key=signing_key("forger"))
        body = json.dumps(h.install_body()).encode()
        assert h.post_lifecycle(INSTALLED, body, f"JWT {token}").status_code == 401
    wrong_secret = h.remember("forged webhook secret", random_secret("forged"))
    for _ in range(20):
        forged = h.webhook_token(secret=wrong_secret)
        assert h.post_webhook(h.webhook_headers(f"JWT {forged}")).status_code == 401
    wrong_admin = h.remember("wrong admin token", random_secret("wrong-admin"))
    response = h.send("GET", "/api/tenants", headers=[("Authorization", f"Bearer {wrong_admin}")])
    assert response.status_code == 401


def test_every_line_is_one_json_object_with_ts_level_and_event(
    story: Story,
) -> None:
    _, lines, _, fmt = story
    assert len(lines) > 5
    for line in lines:
        fields = parsed(line, fmt)
        if fmt == "json":
            assert {"ts", "level", "event", "message"} <= set(fields), line[:200]
        else:
            assert fields["ts"].endswith("Z") and fields["ts"][:2] == "20", line[:200]
            assert fields["level"] in ("debug", "info", "warning", "error"), line[:200]


def test_the_story_s_events_are_logged(story: Story) -> None:
    h, lines, _, fmt = story
    events = [parsed(line, fmt) for line in lines]
    names = [e["event"] for e in events]
    assert names.count("startup") == 1
    assert names.count("install") == 3 and names.count("uninstall") == 1
    # §3 (#18): the refused webhooks and admin call are lines too (rate-limited).
    assert 1 <= names.count("webhook_refused") <= 21
    assert names.count("admin_refused") == 1
    refused = [e for e in events if e["event"] == "lifecycle_refused"]
    if fmt == "json":
        [startup] = [e for e in events if e["event"] == "startup"]
        assert startup["database"] == "sqlite"
        assert startup["database_location"] == str(h.database)
        assert (startup["admin_api"], startup["worker"]) == ("on", "off")
        assert startup["transports"] == "connect,webhook" and startup["metrics"] == "token"
        assert startup["base_url"] == "https://sentry-jira.example.com"
        assert refused and refused[0]["reason"] == "the token signature is invalid"
    else:
        [startup] = [line for line in lines if parsed(line, fmt)["event"] == "startup"]
        assert f"database_location={h.database}" in startup and "admin_api=on" in startup
        assert refused and 'reason="the token signature is invalid"' in next(
            line for line in lines if parsed(line, fmt)["event"] == "lifecycle_refused")
    # 200 forged installs: the burst, not one line each (the rest are counted).
    assert len(refused) < FORGED_LIFECYCLE // 2


def test_no_secret_token_or_jwt_in_any_line(story: Story) -> None:
    h, lines, _, _ = story
    assert len(h.secrets) > 200  # every token sent was remembered
    found = find_leaks(h.secrets, {f"log line {n}": line.encode() for n, line in
                                   enumerate(lines)})
    assert found == [], [f"{leak.secret} in {leak.place}" for leak in found]


def test_3_metrics_count_the_story_without_any_secret(story: Story) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    h, lines, text, _ = story
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for family in text_string_to_metric_families(text) for s in family.samples}

    def value(name: str, **labels: str) -> float:
        return found.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("sentry_jira_deliveries_total", transport="connect", answer="401") >= 20
    assert value("sentry_jira_ack_seconds_count", transport="connect") >= 20
    assert ("sentry_jira_queue_depth", ()) in found
    assert ("sentry_jira_dead_letters", ()) in found
    # The install-key fetches of the signed lifecycle calls went to the key server.
    assert value("sentry_jira_outbound_calls_total", target="install_keys", status="2xx") >= 1
    found_leaks = find_leaks(h.secrets, {"/metrics": text.encode()})
    assert found_leaks == [], [f"{leak.secret} in {leak.place}" for leak in found_leaks]
    assert CLIENT not in text
    [refused] = [line for line in lines if "metrics_refused" in line]
    assert "/metrics" in refused
