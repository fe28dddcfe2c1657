"""The Connect acknowledgement's direct lane (adapters/http/hot_path.py, SPEC §7): every
request answers exactly as through Litestar's router — the same status, headers, body,
refusal log line and stored rows — and the lane is really taken (Litestar's handler is not
called) only for a plain `POST` to the route's exact path."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from adapters.http.app import create_app
from adapters.http.hot_path import ServiceApp
from adapters.logs import refusals
from adapters.wiring import Container, bootstrap
from core.describe import ISSUE_UPDATED_PATH as PATH
from core.forge.endpoints import FORGE_ENDPOINT_KEYS
from core.model.errors import Unavailable
from tests.http.test_issue_updated import CLIENT, SECRET, _settings, deliveries, install
from tests.support.builders import a_settings
from tests.support.forge import APP_ID, ForgeSigner, JwksServer, mint_fit, mint_system_token
from tests.support.paths import fixture_json
from tests.support.webhooks import issue_updated_body, signed_delivery

BODY_LIMIT = 8192


class _Counting:
    """Litestar's own ASGI handler, counting the requests that reach it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        await self.inner(scope, receive, send)


Pair = tuple[list[Container], list[AsyncTestClient[Litestar]], list[_Counting]]


@contextlib.asynccontextmanager
async def _twins(tmp_path: Path, settings: Callable[[Path], Any],
                 prepare: Callable[[Container], Awaitable[None]] | None = None,
                 ) -> AsyncIterator[Pair]:
    """The same app twice on two databases: [0] with its lanes, [1] without (all Litestar),
    each with Litestar's own handler counting the requests that reach it."""
    containers, clients, counters = [], [], []
    for name in ("lane", "litestar"):
        (tmp_path / name).mkdir()
        container = bootstrap(settings(tmp_path / name))
        if prepare is not None:
            await prepare(container)
        app = create_app(container)
        assert isinstance(app, ServiceApp)
        if name == "litestar":
            app._lanes.clear()
        counter = _Counting(app.asgi_handler)
        app.asgi_handler = counter
        containers.append(container)
        counters.append(counter)
        clients.append(AsyncTestClient(app=app))
    try:
        for client in clients:
            await client.__aenter__()
        yield containers, clients, counters
    finally:
        for client in clients:
            await client.__aexit__(None, None, None)
        for container in containers:
            container.close()


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    """The Connect route's app twice (see `_twins`)."""
    async with _twins(tmp_path, lambda where: _settings(
            where, max_body_bytes=str(BODY_LIMIT)), install) as twins:
        yield twins


def _signed(delivery_id: str = "d-1", **claims: Any) -> tuple[dict[str, str], bytes]:
    return signed_delivery(CLIENT, SECRET, delivery_id=delivery_id, **claims)


def _case(method: str, path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    return {"method": method, "url": path, "headers": headers, "content": body}


def _cases() -> list[tuple[str, Callable[[], dict[str, Any]], bool, int]]:
    """(name, request, whether the lane takes it, the status both answer)."""
    def signed(delivery_id: str = "d-1", **claims: Any) -> dict[str, Any]:
        headers, body = _signed(delivery_id, **claims)
        return _case("POST", PATH, headers, body)

    def with_headers(extra: dict[str, str], delivery_id: str = "d-h") -> dict[str, Any]:
        headers, body = _signed(delivery_id)
        return _case("POST", PATH, {**headers, **extra}, body)

    def body(raw: bytes, delivery_id: str = "d-b") -> dict[str, Any]:
        headers, _ = _signed(delivery_id)
        return _case("POST", PATH, headers, raw)

    ignored = issue_updated_body(webhookEvent="jira:issue_created")
    return [
        ("accepted", lambda: signed("d-1"), True, 202),
        ("duplicate", lambda: signed("d-1"), True, 200),
        ("ignored", lambda: _case("POST", PATH, *reversed(_signed_body(ignored))), True,
         200),
        ("no trailing slash", lambda: {**signed("d-2"), "url": PATH.rstrip("/")}, True,
         202),
        ("malformed body", lambda: body(b'{"webhookEvent": 1}'), True, 400),
        ("not JSON", lambda: body(b"{nope"), True, 400),
        ("bad signature", lambda: with_headers({"Authorization": "JWT a.b.c"}), True, 401),
        ("no token", lambda: _case("POST", PATH, {"Content-Type": "application/json"},
                                   b"{}"), True, 401),
        ("expired token", lambda: signed("d-3", lifetime=-600), True, 401),
        ("wrong content type", lambda: with_headers({"Content-Type": "text/plain"}), True,
         415),
        ("body over the limit", lambda: body(b" " * (BODY_LIMIT + 1)), True, 413),
        ("headers over 16 KiB", lambda: with_headers({"X-Pad": "p" * 17_000}), True,
         431),
        ("GET", lambda: {**signed("d-4"), "method": "GET", "content": b""}, False, 405),
        ("PUT", lambda: {**signed("d-5"), "method": "PUT"}, False, 405),
        ("odd Host", lambda: with_headers({"Host": "bad host"}), False, 400),
        ("doubled slash", lambda: {**signed("d-6"), "url": "/extensions/jira//issue-updated/"},
         False, 401),
    ]


def _signed_body(body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    headers, raw = signed_delivery(CLIENT, SECRET, body, delivery_id="d-ignored")
    return raw, headers


def _full_refusal_buckets() -> None:
    """Each app's refusal gets its line: the rate limit (adapters/logs.py) is shared."""
    refusals._buckets.clear()
    refusals._suppressed.clear()


async def _send_to_both(clients: list[AsyncTestClient[Litestar]], counters: list[_Counting],
                        caplog: pytest.LogCaptureFixture, sent: dict[str, Any], *, name: str,
                        taken: bool, status: int) -> None:
    """One request to the app with lanes and to the one without: the same answer and log
    lines from both, `status`; Litestar's handler skipped by the first exactly when `taken`."""
    answers, lines = [], []
    for client, counter in zip(clients, counters, strict=True):
        _full_refusal_buckets()
        before, caplog.records[:] = counter.calls, []
        answers.append(_answer(await client.request(**sent)))
        lines.append([(r.name, r.levelname, r.getMessage()) for r in caplog.records])
        if client is clients[0]:
            assert (counter.calls == before) is taken, name
        else:
            assert counter.calls == before + 1, name
    assert answers[0] == answers[1], name
    assert answers[0][0] == status, (name, answers[0])
    assert lines[0] == lines[1], name


def _answer(response: Any) -> tuple[int, dict[str, str], bytes]:
    headers = {k: v for k, v in response.headers.items() if k != "date"}
    return response.status_code, headers, response.content


async def test_SPEC7_the_lane_answers_every_request_as_litestar_does_and_is_taken_only_for_a_plain_post(  # noqa: E501
    pair: Pair, caplog: pytest.LogCaptureFixture,
) -> None:
    containers, clients, counters = pair
    caplog.set_level(logging.WARNING)
    for name, request, taken, status in _cases():
        await _send_to_both(clients, counters, caplog, request(), name=name, taken=taken,
                            status=status)
    rows = [[{k: row[k] for k in ("delivery_id", "issue_key", "state")}
             for row in deliveries(c)] for c in containers]
    assert rows[0] == rows[1]
    assert {row["delivery_id"] for row in rows[0]} >= {"d-1", "d-2"}


async def test_W10_an_outage_and_an_unexpected_error_answer_as_through_litestar(
    pair: Pair, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    containers, clients, counters = pair

    async def unavailable(*_: Any, **__: Any) -> bool:
        raise Unavailable("the database is unavailable", retry_after=1)

    async def broken(*_: Any, **__: Any) -> bool:
        raise RuntimeError("a bug, quoting secret request data")

    caplog.set_level(logging.ERROR)
    for failure, status in ((unavailable, 503), (broken, 500)):
        answers, lines = [], []
        for container, client, counter in zip(containers, clients, counters, strict=True):
            monkeypatch.setattr(container.inbox, "record", failure)
            caplog.records[:] = []
            before = counter.calls
            headers, body = _signed("d-fail")
            answers.append(_answer(await client.post(PATH, content=body, headers=headers)))
            lines.append([(r.name, r.levelname, r.getMessage().splitlines()[0])
                          for r in caplog.records])
            assert (counter.calls == before) is (client is clients[0])
        assert answers[0] == answers[1]
        assert answers[0][0] == status
        assert lines[0] == lines[1]
        assert all("secret request data" not in line[2] for line in lines[0])
    assert answers[0][2] == b'{"detail":"internal error"}'


async def test_SPEC7_the_lane_keeps_the_route_template_and_handler_litestar_sets(
    pair: Pair,
) -> None:
    """What the route, the guard and the refusal log read from the scope is the same."""
    _, clients, _ = pair
    seen: list[tuple[Any, Any, Any, Any]] = []
    for client in clients:
        app: Any = client.app
        lane = app._lanes.get(PATH)
        handler = lane.handler if lane else None
        original = (lane.app if lane else None)

        async def spy(scope: Any, receive: Any, send: Any, _inner: Any = original) -> None:
            seen.append((scope["path"], scope["path_template"], scope["path_params"],
                         scope["route_handler"].paths))
            await _inner(scope, receive, send)

        if lane is not None:
            lane.app = spy
            headers, body = _signed("d-scope")
            await client.post(PATH, content=body, headers=headers)
            assert handler is not None
    litestar_app: Any = clients[1].app
    matched = litestar_app.asgi_router.handle_routing(path=PATH.rstrip("/"), method="POST")
    _, route_handler, path, params, template = matched
    assert seen == [(path, template, params, route_handler.paths)]


# -- the Forge acknowledgement's lane (§8.2) -----------------------------------------------


@pytest.fixture
async def forge_pair(tmp_path: Path) -> AsyncIterator[tuple[list[Container],
                                                            list[AsyncTestClient[Litestar]],
                                                            list[_Counting], JwksServer]]:
    """The Forge routes' app twice (see `_twins`), one key server. A FIT is single-use per
    database, so the same token can go to both."""
    with JwksServer(ForgeSigner("lane-key")) as jwks:
        async with _twins(tmp_path, lambda where: a_settings(
                where, worker="false", forge_app_id=APP_ID, forge_jwks_url=jwks.url,
                forge_api_hosts="http://127.0.0.1:*", max_body_bytes=str(BODY_LIMIT)),
                ) as (containers, clients, counters):
            yield containers, clients, counters, jwks


FORGE_PATH = "/extensions/jira/forge/issue-updated/"
FORGE_API = "http://127.0.0.1:9/ex/jira/0f2c7e4a-0000-4000-8000-00000000c10d"


async def test_SPEC7_8_2_the_forge_lane_answers_every_request_as_litestar_does(
    forge_pair: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    containers, clients, counters, jwks = forge_pair
    caplog.set_level(logging.WARNING)

    def fit(**options: Any) -> str:
        return mint_fit(jwks.signer, module_key=options.pop(
            "module_key", FORGE_ENDPOINT_KEYS["issue-updated"]), api_base_url=FORGE_API,
            **options)

    event = fixture_json("forge-issue-updated-event.json")
    self_generated = {**event, "selfGenerated": True}
    json_headers = {"content-type": "application/json"}

    def call(body: Any, token: str | None = None, **headers: str) -> dict[str, Any]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return {"method": "POST", "url": FORGE_PATH, "content": raw,
                "headers": {**json_headers, "authorization": f"Bearer {token or fit()}",
                            **headers}}

    cases: list[tuple[str, Callable[[], dict[str, Any]], bool, int]] = [
        ("accepted, with a system token", lambda: call(
            event, **{"x-forge-oauth-system": mint_system_token()}), True, 202),
        ("a retry with a new token", lambda: call(event), True, 200),
        ("self-generated", lambda: call(self_generated), True, 200),
        ("no token", lambda: {**call(event), "headers": json_headers}, True, 401),
        ("another route's key", lambda: call(event, fit(
            module_key=FORGE_ENDPOINT_KEYS["keepalive"])), True, 401),
        ("bad body", lambda: call(b'{"eventType": 7}'), True, 400),
        ("wrong content type", lambda: call(event, **{"content-type": "text/plain"}), True,
         415),
        ("headers over 16 KiB", lambda: call(event, **{"x-pad": "p" * 17_000}), True, 431),
        ("GET", lambda: {**call(event), "method": "GET", "content": b""}, False, 405),
        ("odd Host", lambda: call(event, host="bad host"), False, 400),
    ]
    for name, request, taken, status in cases:
        await _send_to_both(clients, counters, caplog, request(), name=name, taken=taken,
                            status=status)
    rows = [c.database.read_sync(lambda db: db.execute(
        "SELECT delivery_id, issue_key, state FROM deliveries ORDER BY id").fetchall())
        for c in containers if c.database is not None]
    assert len(rows) == 2 and rows[0] == rows[1] and len(rows[0]) == 1
    tokens = [c.database.read_sync(lambda db: db.execute(
        "SELECT forge_system_token IS NOT NULL FROM tenants").fetchall())
        for c in containers if c.database is not None]
    assert tokens == [[(1,)], [(1,)]]  # the system token kept through the lane too
