"""SPEC §7 / issue 13: the plain-webhook route's acknowledgement against the empty handler.

The webhook transport's delivery id is a hash of the raw body (§8.1), so a benchmark that
re-sends one body measures duplicates. Here every request carries a new body (a counter in
its `timestamp`, after a per-run nonce) and its own `X-Hub-Signature`, computed inside wrk:
the Lua script below carries an HMAC-SHA256 of its own (LuaJIT's `bit` operations; no crypto
library exists in wrk). The empty handler gets the very same script, so the client's cost of
signing falls on both sides of the ratio alike.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import secrets
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE.parent / "src"), str(_HERE.parent)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from adapters.config import load_settings  # noqa: E402
from adapters.sqlite.tenants import SqliteTenantStore  # noqa: E402
from adapters.wiring import open_database  # noqa: E402
from bench.ack import FERNET_KEY, FIXTURE  # noqa: E402
from bench.wrk import (  # noqa: E402
    REPO,
    Served,
    free_port,
    lua_string,
    median_run,
    parse_wrk,
    serve_command,
    served,
    server_env,
)
from core.model.credentials import ApiToken, JiraFlavor  # noqa: E402
from core.model.tenant import NewSite  # noqa: E402

WEBHOOK_SECRET = "benchmark-webhook-secret-0123456789-abcdefghij"
EMPTY_PATH = "/extensions/jira/issue-updated/"  # the empty handler's one route

# SHA-256 (FIPS 180-4) and HMAC (RFC 2104) in LuaJIT, written for this benchmark: 32-bit words
# as LuaJIT `bit` integers, sums wrapped with `tobit`. `hmac_hex(msg)` signs under `hub_key`.
_LUA_HMAC = r"""
local bit = require("bit")
local band, bor, bxor, bnot = bit.band, bit.bor, bit.bxor, bit.bnot
local rshift, lshift, ror, tobit, tohex = bit.rshift, bit.lshift, bit.ror, bit.tobit, bit.tohex
local byte, char, rep, concat = string.byte, string.char, string.rep, table.concat
local K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}
for i = 1, 64 do K[i] = tobit(K[i]) end
local W = {}
local function compress(H, s, off)
  for i = 0, 15 do
    local a, b, c, d = byte(s, off + i * 4 + 1, off + i * 4 + 4)
    W[i] = bor(lshift(a, 24), lshift(b, 16), lshift(c, 8), d)
  end
  for i = 16, 63 do
    local x, y = W[i - 15], W[i - 2]
    local s0 = bxor(ror(x, 7), ror(x, 18), rshift(x, 3))
    local s1 = bxor(ror(y, 17), ror(y, 19), rshift(y, 10))
    W[i] = tobit(W[i - 16] + s0 + W[i - 7] + s1)
  end
  local a, b, c, d, e, f, g, h = H[1], H[2], H[3], H[4], H[5], H[6], H[7], H[8]
  for i = 0, 63 do
    local t1 = tobit(h + bxor(ror(e, 6), ror(e, 11), ror(e, 25))
                     + bxor(band(e, f), band(bnot(e), g)) + K[i + 1] + W[i])
    local t2 = tobit(bxor(ror(a, 2), ror(a, 13), ror(a, 22))
                     + bxor(band(a, b), band(a, c), band(b, c)))
    h, g, f, e, d, c, b, a = g, f, e, tobit(d + t1), c, b, a, tobit(t1 + t2)
  end
  H[1], H[2], H[3], H[4] = tobit(H[1] + a), tobit(H[2] + b), tobit(H[3] + c), tobit(H[4] + d)
  H[5], H[6], H[7], H[8] = tobit(H[5] + e), tobit(H[6] + f), tobit(H[7] + g), tobit(H[8] + h)
end
local function word_bytes(x)
  return char(band(rshift(x, 24), 255), band(rshift(x, 16), 255),
              band(rshift(x, 8), 255), band(x, 255))
end
-- `prefix_len` bytes were already hashed into `H` (whole blocks): the padding counts them.
local function finish(H, msg, prefix_len)
  local len = #msg + prefix_len
  msg = msg .. "\128" .. rep("\0", (55 - len) % 64) .. word_bytes(0) .. word_bytes(len * 8)
  for off = 0, #msg - 1, 64 do compress(H, msg, off) end
  return H
end
local function digest_bytes(H)
  local out = {}
  for i = 1, 8 do out[i] = word_bytes(H[i]) end
  return concat(out)
end
local IV = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
            0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}
for i = 1, 8 do IV[i] = tobit(IV[i]) end
local function keyed_state(key, pad)
  local block = {}
  for i = 1, 64 do block[i] = char(bxor(byte(key, i) or 0, pad)) end
  local H = {unpack(IV)}
  compress(H, concat(block), 0)
  return H
end
local inner_state, outer_state = keyed_state(hub_key, 0x36), keyed_state(hub_key, 0x5c)
function hmac_hex(msg)
  local inner = digest_bytes(finish({unpack(inner_state)}, msg, 64))
  local H = finish({unpack(outer_state)}, inner, 64)
  local hex = {}
  for i = 1, 8 do hex[i] = tohex(H[i]) end
  return concat(hex)
end
"""

_REQUEST = r"""
local counter = 0
request = function()
  counter = counter + 1
  local body = body_prefix .. run_base .. counter .. body_suffix
  wrk.headers["X-Hub-Signature"] = "sha256=" .. hmac_hex(body)
  return wrk.format("POST", nil, nil, body)
end
"""


def body_parts() -> tuple[str, str]:
    """The fixture delivery split around a unique `timestamp` (digits go in between)."""
    delivery = json.loads(FIXTURE.read_text())
    delivery["timestamp"] = 0
    text = json.dumps(delivery, separators=(",", ":"))
    marker = '"timestamp":0'
    at = text.index(marker) + len(marker) - 1
    return text[:at], text[at + 1 :]


def lua_script(secret: str) -> str:
    prefix, suffix = body_parts()
    lines = [
        'wrk.method = "POST"',
        'wrk.headers["Content-Type"] = "application/json"',
        f"hub_key = {lua_string(secret)}",
        f"body_prefix = {lua_string(prefix)}",
        f"body_suffix = {lua_string(suffix)}",
        # A fresh nonce per script: bodies (and so delivery ids) never repeat across rounds.
        f"run_base = {lua_string(str(secrets.randbelow(10**9) + 10**9))}",
    ]
    return "\n".join(lines) + _LUA_HMAC + _REQUEST


def python_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def register_site(env: dict[str, str]) -> int:
    settings = load_settings(env)
    database = open_database(settings)
    try:
        site = NewSite(
            base_url="https://bench.atlassian.net",
            flavor=JiraFlavor.CLOUD,
            credential=ApiToken(email="bench@example.com", token="bench-api-token"),
            webhook_secret=WEBHOOK_SECRET,
            registered_at=datetime.now(UTC),
        )
        return asyncio.run(SqliteTenantStore(database).register_site(site)).id
    finally:
        database.close()


def run_wrk(url: str, script: str, *, seconds: int, connections: int, workdir: Path,
            server: Served) -> dict[str, float]:
    path = workdir / "hub.lua"
    path.write_text(script)
    before = server.cpu_seconds()
    result = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(path), url],
        capture_output=True, text=True, check=True,
    )
    figures = parse_wrk(result.stdout)
    if figures["requests"]:
        figures["cpu_us"] = (server.cpu_seconds() - before) / figures["requests"] * 1e6
    return figures


def check_signing(url: str, workdir: Path, server: Served) -> None:
    """One short wrk run must be all 202: the Lua HMAC agrees with Jira's (the server's)."""
    figures = run_wrk(url, lua_script(WEBHOOK_SECRET), seconds=1, connections=2,
                      workdir=workdir, server=server)
    if figures["non2xx"] or not figures["requests"]:
        raise RuntimeError(f"the Lua signatures were refused: {figures}")


def queue_depth(url: str) -> int:
    return int(httpx.get(url + "/health", timeout=5).json().get("queue_depth") or 0)


def measure_webhook_ack(workdir: Path, *, seconds: int, rounds: int,
                        connections: int) -> dict[str, Any]:
    """Median of alternating rounds: the webhook route (worker off) vs the empty handler."""
    port = free_port()
    env = server_env({
        "SENTRY_JIRA_DATABASE": str(workdir / "webhook.db"),
        "SENTRY_JIRA_SECRET_KEY": FERNET_KEY,
        "SENTRY_JIRA_BASE_URL": f"http://127.0.0.1:{port}",
        "SENTRY_JIRA_WORKER": "off",
    })
    site_id = register_site(env)
    empty_port = free_port()
    empty_cmd = [sys.executable, str(REPO / "bench" / "empty_app.py"), str(empty_port)]
    empty_env = server_env({})
    script = lua_script(WEBHOOK_SECRET)
    with (
        served(serve_command(port), env, port, workdir / "webhook.log") as app,
        served(empty_cmd, empty_env, empty_port, workdir / "empty.log") as empty,
    ):
        hook_url = f"{app.url}/extensions/jira/webhook/{site_id}/"
        check_signing(hook_url, workdir, app)
        targets = [(hook_url, app), (empty.url + EMPTY_PATH, empty)]
        for url, server in targets:  # warm-up
            run_wrk(url, script, seconds=2, connections=connections, workdir=workdir,
                    server=server)
        hooks: list[dict[str, float]] = []
        empties: list[dict[str, float]] = []
        queued_before = queue_depth(app.url)
        for _ in range(rounds):
            hooks.append(run_wrk(hook_url, lua_script(WEBHOOK_SECRET), seconds=seconds,
                                 connections=connections, workdir=workdir, server=app))
            empties.append(run_wrk(empty.url + EMPTY_PATH, script, seconds=seconds,
                                   connections=connections, workdir=workdir, server=empty))
        # The worker is off: every accepted delivery stays queued, a duplicate adds nothing.
        recorded = queue_depth(app.url) - queued_before
    hook, baseline = median_run(hooks), median_run(empties)
    return {
        "recorded": recorded,
        "sent": sum(h["requests"] for h in hooks),
        "webhook": hook,
        "empty": baseline,
        "ratio": hook["rps"] / baseline["rps"] if baseline["rps"] else 0.0,
        "rounds": [(h["rps"], e["rps"]) for h, e in zip(hooks, empties, strict=True)],
    }


def print_webhook(figures: dict[str, Any]) -> None:
    hook, empty = figures["webhook"], figures["empty"]
    print("webhook route (§8.1) — every request a new body signed in wrk (median round)\n")
    print(f"{'run':<38} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'CPU µs/req':>11}")
    for name, run in (("webhook ack (HMAC, unique bodies)", hook),
                      ("empty Litestar POST handler", empty)):
        print(f"{name:<38} {run['rps']:>7.0f} {run['p50']:>8.2f} {run['p99']:>8.2f} "
              f"{run['non2xx']:>8.0f} {run.get('cpu_us', 0):>11.0f}")
    pairs = ", ".join(f"{h:.0f}/{e:.0f}" for h, e in figures["rounds"])
    print(f"\nrounds (webhook/empty req/s): {pairs}")
    print(f"deliveries recorded: {figures['recorded']} of {figures['sent']:.0f} sent "
          "(each body unique: none may be a duplicate)")
    print(f"webhook ack / empty rate ratio: {figures['ratio']:.2f}  (target ≥ 0.60)")
    cpu_ratio = empty.get("cpu_us", 0) / hook["cpu_us"] if hook.get("cpu_us") else 0.0
    print(f"server CPU per request, empty / webhook: {cpu_ratio:.2f}  (wrk signs every body "
          "in Lua and may itself be the limit: this ratio does not depend on it)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sentry-jira-bench-") as work:
        figures = measure_webhook_ack(Path(work), seconds=args.seconds, rounds=args.rounds,
                                      connections=args.connections)
    print_webhook(figures)


if __name__ == "__main__":
    main()
