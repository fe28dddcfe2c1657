"""Install latency (§4.3, L1–L3) with a cold and a warm install-key cache.

`sentry-jira serve` runs with `SENTRY_JIRA_INSTALL_KEYS_URL` pointing at the loopback key
server of the tests. Signed `installed` callbacks (RS256, real key pair) go out one at a
time with httpx, each from a new clientKey:

- cold: each token names a `kid` the server has never seen, so each install fetches its
  public key from the key server first;
- warm: every token names the same `kid`, fetched once by an untimed install beforehand.

Cold and warm requests alternate (cold, warm, cold, …) so background load falls on both
alike. Tokens and bodies are made before the clock starts; the time is the round trip of
the POST (204). The key server counts its fetches: cold should be N, warm 1.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from tests.support.connect_tokens import SigningKey, lifecycle_claims, rs256_token
from tests.support.key_server import running_key_server

from bench.ack import FERNET_KEY
from bench.wrk import free_port, percentile, serve_command, served, server_env
from core.describe import INSTALLED_PATH


def install_request(
    *, app_key: str, base_url: str, client_key: str, kid: str, key: SigningKey
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one signed `installed` callback."""
    body = {
        "key": app_key,
        "clientKey": client_key,
        "sharedSecret": f"bench-install-secret-{client_key}-0123456789abcdefghij",
        "baseUrl": f"https://{client_key}.atlassian.net",
        "productType": "jira",
        "eventType": "installed",
    }
    claims = lifecycle_claims(
        iss=client_key, aud=base_url, now=datetime.now(UTC), path=INSTALLED_PATH
    )
    token = rs256_token(claims, kid=kid, key=key)
    return json.dumps(body).encode(), {
        "Authorization": f"JWT {token}",
        "Content-Type": "application/json",
    }


def measure_install_latency(workdir: Path, *, installs: int) -> dict[str, Any]:
    """p50 / p95 (ms) of cold and warm installs and the key fetches each made."""
    key = SigningKey()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    app_key = "127.0.0.1.jira"  # what the server derives from its base URL
    cold_kids = [f"bench-cold-{i}" for i in range(installs)]
    with running_key_server() as keys:
        for kid in [*cold_kids, "bench-warm", "bench-first"]:
            keys.serve(kid, key.public_pem)
        env = server_env(
            {
                "SENTRY_JIRA_DATABASE": str(workdir / "install.db"),
                "SENTRY_JIRA_SECRET_KEY": FERNET_KEY,
                "SENTRY_JIRA_BASE_URL": base_url,
                "SENTRY_JIRA_APP_KEY": app_key,
                "SENTRY_JIRA_INSTALL_KEYS_URL": keys.url,
                "SENTRY_JIRA_WORKER": "off",
            }
        )

        def request(client_key: str, kid: str) -> tuple[bytes, dict[str, str]]:
            return install_request(
                app_key=app_key, base_url=base_url, client_key=client_key, kid=kid, key=key
            )

        with (
            served(serve_command(port), env, port, workdir / "install.log") as server,
            httpx.Client(base_url=server.url, timeout=10, follow_redirects=False) as client,
        ):

            def post(body: bytes, headers: dict[str, str]) -> float:
                started = time.perf_counter()
                response = client.post(INSTALLED_PATH, content=body, headers=headers)
                elapsed = time.perf_counter() - started
                if response.status_code != 204:
                    raise RuntimeError(
                        f"install answered {response.status_code}: {response.text[:200]}"
                    )
                return elapsed * 1000

            post(*request("bench-first", "bench-first"))  # first request of the process
            post(*request("bench-warm-0", "bench-warm"))  # the warm kid's one fetch
            cold: list[float] = []
            warm: list[float] = []
            for i, kid in enumerate(cold_kids):
                cold.append(post(*request(f"bench-cold-{i}", kid)))
                warm.append(post(*request(f"bench-warm-{i + 1}", "bench-warm")))
        cold_fetches = sum(keys.fetches(kid) for kid in cold_kids)
        warm_fetches = keys.fetches("bench-warm")
    return {
        "installs": installs,
        "cold_p50": percentile(cold, 0.5),
        "cold_p95": percentile(cold, 0.95),
        "warm_p50": percentile(warm, 0.5),
        "warm_p95": percentile(warm, 0.95),
        "cold_fetches": cold_fetches,
        "warm_fetches": warm_fetches,
    }
