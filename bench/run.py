"""Benchmark of SPEC §7, printed as a table: `scripts/bench` (needs `wrk` on PATH).

Ack path: `sentry-jira serve` receives signed `jira:issue_updated` deliveries, each with a
unique delivery id, from wrk at 32 connections; in the same run an empty Litestar POST handler
is served the same way (`adapters.server.run_server`) and driven with the same requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jwt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

from tests.support.process import free_port, server_env, wait_until_ready  # noqa: E402

from adapters.config import load_settings  # noqa: E402
from adapters.sqlite.tenants import SqliteTenantStore  # noqa: E402
from adapters.wiring import open_database  # noqa: E402
from core.qsh import query_string_hash  # noqa: E402
from core.tenant import Installation  # noqa: E402

ISSUE_UPDATED = "/extensions/jira/issue-updated/"
FERNET_KEY = "x8mmEJqS4u-SOE9C7kFH0SV1nsfgAXl0fR8-Yt1ZK-8="
SHARED_SECRET = "benchmark-shared-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
CLIENT_KEY = "bench-client-key"

WRK_SCRIPT = """
local counter = 0
local prefix = ""
function setup(thread)
  thread:set("prefix", tostring(math.random(1, 1000000000)))
end
function init(args)
  prefix = prefix .. tostring(math.random(1, 1000000000))
end
request = function()
  counter = counter + 1
  wrk.headers["X-Atlassian-Webhook-Identifier"] = prefix .. "-" .. counter
  return wrk.format("POST", nil, nil, nil)
end
"""


@contextmanager
def served(command: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(url + "/health", proc)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def wrk(url: str, headers: dict[str, str], body: bytes, *, seconds: int, connections: int,
        workdir: Path) -> dict[str, float]:
    script = workdir / "post.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = {lua_string(body.decode())}"]
    lines += [f'wrk.headers[{lua_string(k)}] = {lua_string(v)}' for k, v in headers.items()]
    script.write_text("\n".join(lines) + WRK_SCRIPT)
    result = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True)
    return parse_wrk(result.stdout)


def lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def parse_wrk(output: str) -> dict[str, float]:
    def millis(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if not match:
            raise RuntimeError(f"no {label}% latency in wrk output:\n{output}")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    statuses = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return {
        "rps": float(rate.group(1)) if rate else 0.0,
        "p50": millis("50"),
        "p99": millis("99"),
        "non2xx": float(statuses.group(1)) if statuses else 0.0,
    }


def install_tenant(env: dict[str, str]) -> None:
    settings = load_settings(env)
    database = open_database(settings)
    try:
        store = SqliteTenantStore(database)
        asyncio.run(store.upsert_installed(Installation(
            client_key=CLIENT_KEY, shared_secret=SHARED_SECRET,
            base_url="https://bench.atlassian.net", display_url=None,
            installed_at=datetime.now(UTC))))
    finally:
        database.close()


def signed_headers(path: str) -> dict[str, str]:
    now = int(time.time())
    token = jwt.encode({"iss": CLIENT_KEY, "iat": now, "exp": now + 3600,
                        "qsh": query_string_hash("POST", path, "")}, SHARED_SECRET,
                       algorithm="HS256")
    return {"Authorization": f"JWT {token}", "Content-Type": "application/json"}


def check_once(url: str, headers: dict[str, str], body: bytes, expect: int) -> None:
    response = httpx.post(url, content=body, headers={**headers,
                          "X-Atlassian-Webhook-Identifier": f"check-{time.time_ns()}"}, timeout=5)
    if response.status_code != expect:
        raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:200]}")


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median rate (its latencies belong to it)."""
    return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8, help="wrk duration per round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating rounds of each server; medians are reported")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is not installed (Debian: apt-get install wrk)")

    workdir = Path(tempfile.mkdtemp(prefix="sentry-jira-bench-"))
    body = (REPO / "tests" / "fixtures" / "jira-issue-updated-status.json").read_bytes()
    port = free_port()
    env = server_env({
        "SENTRY_JIRA_DATABASE": str(workdir / "bench.db"),
        "SENTRY_JIRA_SECRET_KEY": FERNET_KEY,
        "SENTRY_JIRA_BASE_URL": f"http://127.0.0.1:{port}",
    })
    install_tenant(env)
    headers = signed_headers(ISSUE_UPDATED)
    serve_cmd = [sys.executable, "-m", "adapters.cli", "serve", "--port", str(port)]
    empty_port = free_port()
    empty_cmd = [sys.executable, str(REPO / "bench" / "empty_app.py"), str(empty_port)]
    empty_env = server_env({})
    empty_env["PYTHONPATH"] = f"{REPO / 'src'}{os.pathsep}{REPO}"
    acks: list[dict[str, float]] = []
    empties: list[dict[str, float]] = []
    with served(serve_cmd, env, port, workdir / "serve.log") as url, \
            served(empty_cmd, empty_env, empty_port, workdir / "empty.log") as empty_url:
        targets = ((url + ISSUE_UPDATED, acks), (empty_url + ISSUE_UPDATED, empties))
        for target, _ in targets:
            check_once(target, headers, body, 202)
            wrk(target, headers, body, seconds=2, connections=args.connections,
                workdir=workdir)  # warm-up
        # Alternate the two servers so that background load on the machine hits both alike.
        for _ in range(args.rounds):
            for target, runs in targets:
                runs.append(wrk(target, headers, body, seconds=args.seconds,
                                connections=args.connections, workdir=workdir))
    ack, empty = median_run(acks), median_run(empties)
    ratio = ack["rps"] / empty["rps"] if empty["rps"] else 0.0
    print(f"\nsentry-jira benchmark — {args.connections} connections, {args.rounds} alternating "
          f"rounds of {args.seconds} s, {os.cpu_count()} cores (median round shown)\n")
    print(f"{'run':<34}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}")
    for name, figures in (("issue-updated ack (signed, unique)", ack),
                          ("empty Litestar POST handler", empty)):
        print(f"{name:<34}{figures['rps']:>10.0f}{figures['p50']:>10.2f}{figures['p99']:>10.2f}"
              f"{figures['non2xx']:>10.0f}")
    rounds = ", ".join(f"{a['rps']:.0f}/{e['rps']:.0f}" for a, e in zip(acks, empties, strict=True))
    print(f"\nrounds (ack/empty req/s): {rounds}")
    print(f"ack / empty rate ratio: {ratio:.2f}  (target ≥ 0.60)")
    print(f"ack p99: {ack['p99']:.2f} ms  (target < 20 ms)")
    if args.json:
        print(json.dumps({"ack": ack, "empty": empty, "ratio": ratio}))
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
