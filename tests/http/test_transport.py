"""SPEC §5 transport checks: 405 with Allow, 431, 413 before reading the body, 415, JSON errors."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, Request, post
from litestar.testing import AsyncTestClient

from adapters.http.app import create_app
from adapters.http.transport import JSON_BODY_OPT, MAX_HEADER_BYTES
from tests.support.builders import a_fake_container, a_settings


@post("/probe/", opt={JSON_BODY_OPT: True}, sync_to_thread=False, status_code=200)
def probe_handler() -> dict[str, str]:
    return {"status": "reached"}


def probe_app(**env: str) -> Litestar:
    """The real app (real guard, real error map) plus a JSON POST route to probe it with."""
    app = create_app(a_fake_container(a_settings(**env)))
    app.register(probe_handler)
    return app


def a_scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
        "headers": [(b"host", b"testserver"), *headers],
        "state": {},
    }


async def test_405_carries_allow_and_the_json_error_shape() -> None:
    async with AsyncTestClient(app=probe_app()) as client:
        response = await client.put(
            "/probe/", content=b"{}", headers={"content-type": "application/json"}
        )
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]
    assert response.json() == {"detail": "Method Not Allowed"}


async def test_405_comes_before_431() -> None:
    huge = {"x-filler": "a" * (MAX_HEADER_BYTES + 10)}
    async with AsyncTestClient(app=probe_app()) as client:
        response = await client.get("/probe/", headers=huge)
    assert response.status_code == 405


async def test_431_when_headers_exceed_16_kib() -> None:
    headers = {f"x-h{n}": "v" * 1000 for n in range(17)}
    async with AsyncTestClient(app=probe_app()) as client:
        response = await client.post(
            "/probe/", content=b"{}", headers={"content-type": "application/json", **headers}
        )
    assert response.status_code == 431
    assert response.json() == {"detail": "request headers are too large"}


async def test_headers_just_under_the_limit_pass() -> None:
    async with AsyncTestClient(app=probe_app()) as client:
        response = await client.post(
            "/probe/",
            content=b"{}",
            headers={"content-type": "application/json", "x-h": "v" * 15000},
        )
    assert response.status_code == 200


async def test_415_for_a_body_that_is_not_json() -> None:
    async with AsyncTestClient(app=probe_app()) as client:
        plain = await client.post("/probe/", content=b"{}", headers={"content-type": "text/plain"})
        missing = await client.post("/probe/", content=b"{}")
        with_charset = await client.post(
            "/probe/", content=b"{}", headers={"content-type": "application/json; charset=utf-8"}
        )
    assert plain.status_code == 415
    assert missing.status_code == 415
    assert with_charset.status_code == 200


async def test_413_before_the_body_is_read() -> None:
    """Drive the ASGI app directly: a too-large Content-Length is refused without one receive."""
    app = probe_app(max_body_bytes="2048")
    received: list[Any] = []
    sent: list[Any] = []

    async def receive() -> Any:
        received.append("called")
        return {"type": "http.request", "body": b"x" * 100, "more_body": True}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = a_scope(
        "/probe/", [(b"content-type", b"application/json"), (b"content-length", b"10000000")]
    )
    await app(scope, receive, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == 413
    assert received == []


async def test_413_for_a_streamed_body_over_the_limit() -> None:
    """No Content-Length: the body is counted as it arrives and refused past the limit."""
    app = probe_app(max_body_bytes="2048")

    @post("/reads/", status_code=200)
    async def reads(request: Request[Any, Any, Any]) -> dict[str, int]:
        return {"n": len(await request.body())}

    app.register(reads)
    chunks = [{"type": "http.request", "body": b"x" * 1024, "more_body": True}] * 10
    chunks.append({"type": "http.request", "body": b"", "more_body": False})
    sent: list[Any] = []

    async def receive() -> Any:
        return chunks.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    await app(a_scope("/reads/", [(b"content-type", b"application/json")]), receive, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == 413
    assert len(chunks) > 5  # it stopped reading long before the end


@pytest.mark.parametrize("path", ["/nothing-here", "/extensions/jira/nope/"])
async def test_unknown_paths_answer_404_json(path: str) -> None:
    async with AsyncTestClient(app=probe_app()) as client:
        response = await client.get(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


async def test_an_unexpected_error_is_500_without_a_trace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = probe_app()

    @post("/boom/", sync_to_thread=False)
    def boom() -> None:
        raise RuntimeError("secret-value-in-exception")

    app.register(boom)
    async with AsyncTestClient(app=app) as client:
        response = await client.post("/boom/")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error"}
    assert "secret-value" not in response.text
    # The log says what and where (type, frames), never the exception's own text.
    logged = "\n".join(r.getMessage() for r in caplog.records
                       if r.levelname == "ERROR" and "unhandled" in r.getMessage())
    assert "RuntimeError" in logged and "boom" in logged
    assert "secret-value" not in caplog.text


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b'{"a": "\xff"}', "the body is not valid UTF-8"),
        (b'{"a": ', "the body is not valid JSON"),
        (b"", "the body is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "the body is nested too deeply"),
    ],
)
async def test_400_for_a_body_that_is_not_utf8_json(raw: bytes, detail: str) -> None:
    from adapters.http.body import decode_json

    app = probe_app()

    @post("/decodes/", opt={JSON_BODY_OPT: True}, status_code=200)
    async def decodes(request: Request[Any, Any, Any]) -> dict[str, str]:
        decode_json(await request.body())
        return {"status": "decoded"}

    app.register(decodes)
    async with AsyncTestClient(app=app) as client:
        response = await client.post("/decodes/", content=raw,
                                     headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"detail": detail}
