"""SPEC §3 logs of the lifecycle callbacks (#18): one line per install / uninstall, every
refusal with its reason, refusal lines rate-limited, and no secret in any of them."""

from __future__ import annotations

import json

import pytest

from adapters.http.connect import lifecycle as lifecycle_routes
from adapters.logs import RefusalLog
from tests.http import test_lifecycle as lifecycle_suite
from tests.http.test_lifecycle import (
    FIXTURE_SECRET,
    UNINSTALLED,
    Site,
    a_lifecycle_token,
    install_body,
)
from tests.support.log_capture import captured_log, fresh_refusal_log

# The lifecycle suite's fixtures: the app on a real SQLite database and a loopback key server.
key_server = lifecycle_suite.key_server
site = lifecycle_suite.site


@pytest.fixture
def limiter(monkeypatch: pytest.MonkeyPatch) -> RefusalLog:
    """A fresh limiter whose clock moves 1 ms a reading (the suite's speed does not matter)."""
    fresh = fresh_refusal_log()
    monkeypatch.setattr(lifecycle_routes, "refusals", fresh)
    return fresh


async def test_install_and_uninstall_are_one_line_each_without_the_secret(site: Site) -> None:
    with captured_log("json") as captured:
        assert (await site.install()).status_code == 204
        uninstall = await site.uninstall(a_lifecycle_token(UNINSTALLED))
        assert uninstall.status_code == 204
    [installed] = captured.named("install")
    [uninstalled] = captured.named("uninstall")
    assert installed["client_key"] == install_body()["clientKey"]
    assert installed["base_url"] == "https://acme.atlassian.net"
    assert installed["tenant_id"] == uninstalled["tenant_id"]
    assert installed["replay"] == "first_use"
    assert FIXTURE_SECRET not in captured.stream.getvalue()


async def test_a_refused_install_is_logged_with_its_reason_and_nothing_of_the_request(
    site: Site, limiter: RefusalLog
) -> None:
    forged = a_lifecycle_token(kid=None)
    with captured_log("text") as captured:
        response = await site.install(forged)
        bad_body = await site.install(body=install_body(clientKey=None))
    assert response.status_code == 401 and bad_body.status_code == 400
    first, second = captured.lines
    assert "lifecycle_refused" in first and "status=401" in first
    assert 'reason="the token has no valid key id"' in first
    assert "status=400" in second and "clientKey is required" in second
    assert forged not in captured.stream.getvalue()
    assert forged.rsplit(".", 1)[1] not in captured.stream.getvalue()


async def test_a_flood_of_forged_installs_writes_a_bounded_number_of_lines(
    site: Site, limiter: RefusalLog
) -> None:
    with captured_log("json") as captured:
        for _ in range(150):  # the clock moves 0.15 s over the flood: the burst of 20 only
            response = await site.install(authorization="JWT not.a.token")
            assert response.status_code == 401
    lines = captured.named("lifecycle_refused")
    assert 20 <= len(lines) <= 21
    assert all(line["reason"] == "the token is malformed" for line in lines)
    assert json.dumps(lines).count("not.a.token") == 0
