"""Tests' Atlassian for Forge Remote (SPEC §8.2): a FIT minter and a JWKS server on loopback.

The minter signs as Atlassian documents a Forge Invocation Token: RS256 with a `kid` header,
`iss` `forge/invocation-token`, `aud` the app id, `iat`/`nbf`/`exp` (a short life), a `jti`,
and the `app` claim (`id`, `installationId`, `apiBaseUrl`, `environment`, `module`, ...)
next to `context` and `principal`. `overrides` replace claims (a dotted name reaches into
`app`), `drop` removes them: each refusal test breaks exactly one rule.

The JWKS server holds signers and serves their public keys at `/.well-known/jwks.json` with
a programmable `Cache-Control`; `rotate()` adds a new signer (the old one stays until
`retire`), `behave()` switches the answer to a failure. Every request is counted.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from jwt.algorithms import RSAAlgorithm

APP_ID = "ari:cloud:ecosystem::app/8db1f2a4-5c6d-4e7f-9a0b-1c2d3e4f5a6b"
INSTALLATION_ID = "ari:cloud:ecosystem::installation/2f4e6a8c-1b3d-4f5a-8c7e-9d0b1a2c3e4f"
ISSUER = "forge/invocation-token"
JWKS_PATH = "/.well-known/jwks.json"

Behaviour = Literal["ok", "500", "hang", "redirect", "html", "huge", "404"]


@cache
def _private_key(index: int) -> RSAPrivateKey:
    # Generated once per process (2048-bit generation is slow), one per index.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class ForgeSigner:
    """One signing key of Forge's token service, named by `kid`."""

    _count = 0

    def __init__(self, kid: str | None = None) -> None:
        ForgeSigner._count += 1
        self.key = _private_key(ForgeSigner._count % 4)
        self.kid = kid or f"forge-key-{ForgeSigner._count}"

    def jwk(self) -> dict[str, Any]:
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {**public, "kid": self.kid, "alg": "RS256", "use": "sig"}

    @property
    def public_pem(self) -> bytes:
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            PublicFormat,
        )
        return self.key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def fit_claims(*, module_key: str, api_base_url: str, app_id: str = APP_ID,
               installation_id: str = INSTALLATION_ID, environment: str = "PRODUCTION",
               now: float | None = None, lifetime: int = 60) -> dict[str, Any]:
    """The claims of a FIT as the Forge Remote essentials page lays them out."""
    issued = int(time.time() if now is None else now)
    return {
        "app": {
            "installationId": installation_id,
            "apiBaseUrl": api_base_url,
            "id": app_id,
            "appVersion": "1.2.0",
            "environment": {"type": environment, "id": "3c1f0b2e-7d6a-4e5f-8a9b-0c1d2e3f4a5b"},
            "module": {"type": "core:endpoint", "key": module_key},
        },
        "context": {"cloudId": "0f2c7e4a-0000-4000-8000-00000000c10d",
                    "moduleKey": module_key},
        "principal": "5b10ac8d82e05b22cc7d4ef5",
        "aud": app_id,
        "iss": ISSUER,
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
        "jti": str(uuid.uuid4()),
    }


def mint_fit(signer: ForgeSigner, *, module_key: str, api_base_url: str,
             overrides: Mapping[str, Any] | None = None, drop: tuple[str, ...] = (),
             headers: Mapping[str, Any] | None = None, **claim_options: Any) -> str:
    """A signed FIT; `overrides` / `drop` take claim names, `app.x.y` reaching into `app`."""
    claims = fit_claims(module_key=module_key, api_base_url=api_base_url, **claim_options)
    for name, value in (overrides or {}).items():
        *path, last = name.split(".")
        target = claims
        for part in path:
            target = target[part]
        target[last] = value
    for name in drop:
        *path, last = name.split(".")
        target = claims
        for part in path:
            target = target[part]
        target.pop(last, None)
    return jwt.encode(claims, signer.key, algorithm="RS256",
                      headers={"kid": signer.kid, **(headers or {})})


def mint_system_token(expires_in: float = 3600, *, now: float | None = None) -> str:
    """An app system token as Forge sends it (`x-forge-oauth-system`): a JWT whose `exp` is
    all this service reads. Signed with a throwaway key: only Jira can judge it."""
    issued = int(time.time() if now is None else now)
    claims = {"iss": "forge-oauth", "sub": "app-system", "iat": issued,
              "exp": int(issued + expires_in), "jti": str(uuid.uuid4())}
    return jwt.encode(claims, "not-a-real-signing-secret-0123456789", algorithm="HS256")


def unsigned_segment(value: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


class JwksServer:
    """A JWKS endpoint on 127.0.0.1 serving the public keys of `signers`."""

    def __init__(self, *signers: ForgeSigner, cache_control: str | None = "max-age=3600") -> None:
        self.signers: list[ForgeSigner] = list(signers) or [ForgeSigner()]
        self.cache_control = cache_control
        self.behaviour: Behaviour = "ok"
        self.requests = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def signer(self) -> ForgeSigner:
        return self.signers[-1]

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{JWKS_PATH}"

    def rotate(self) -> ForgeSigner:
        """A new key joins the set (Atlassian publishes it before tokens use it)."""
        new = ForgeSigner()
        self.signers.append(new)
        return new

    def retire(self, signer: ForgeSigner) -> None:
        self.signers.remove(signer)

    def behave(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour

    def document(self) -> dict[str, Any]:
        return {"keys": [s.jwk() for s in self.signers]}

    def start(self) -> JwksServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> JwksServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                with server._lock:
                    server.requests += 1
                behaviour = server.behaviour
                if self.path != JWKS_PATH:
                    return self._answer(404, b"{}", "application/json")
                if behaviour == "500":
                    return self._answer(500, b"oops", "text/plain")
                if behaviour == "404":
                    return self._answer(404, b"{}", "application/json")
                if behaviour == "hang":
                    server._stopping.wait(5.0)
                    return self._answer(200, b"{}", "application/json")
                if behaviour == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "http://127.0.0.1:9/evil.json")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if behaviour == "html":
                    return self._answer(200, b"<html>maintenance</html>", "text/html")
                if behaviour == "huge":
                    return self._answer(200, b'{"keys": [' + b" " * 200_000 + b"]}",
                                        "application/json")
                body = json.dumps(server.document()).encode()
                return self._answer(200, body, "application/json")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                if server.cache_control is not None and status == 200:
                    self.send_header("Cache-Control", server.cache_control)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


@contextmanager
def running_jwks_server(*signers: ForgeSigner) -> Iterator[JwksServer]:
    with JwksServer(*signers) as server:
        yield server
