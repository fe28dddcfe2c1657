"""SPEC §7 / §8.2: the Forge route's acknowledgement against the empty handler.

Every Forge call carries a new Forge Invocation Token (RS256, single use: a replayed `jti` is
401) and here a new event (a counter in its `timestamp`), so nothing is a duplicate. wrk
cannot sign RS256, so each round's tokens are minted beforehand (about 0.3 ms each, with the
same key the loopback JWKS server publishes; each lives 300 s, the longest a FIT may) and
written with their bodies to a file the Lua script reads once and walks through. The empty
handler gets the very same script and requests. The server fetches the key set once and
verifies with the cached key, as in production.

    .venv/bin/python bench/forge_ack.py [--seconds 8] [--rounds 3] [--connections 32]
                                         [--postgres]

With `--postgres` the service runs on a throwaway PostgreSQL cluster (initdb + pg_ctl, Unix
socket, the server's default durability; §9) instead of SQLite.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE.parent / "src"), str(_HERE.parent)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from tests.support.forge import (  # noqa: E402
    APP_ID,
    ForgeSigner,
    JwksServer,
    mint_fit,
    mint_system_token,
)
from tests.support.paths import fixture_json  # noqa: E402

from bench.ack import FERNET_KEY  # noqa: E402
from bench.wrk import (  # noqa: E402
    REPO,
    Served,
    free_port,
    median_run,
    parse_wrk,
    serve_command,
    served,
    server_env,
)
from core.forge.endpoints import FORGE_ENDPOINT_KEYS  # noqa: E402

EMPTY_PATH = "/extensions/jira/issue-updated/"  # the empty handler's one route
ROUTE = "/extensions/jira/forge/issue-updated/"
API = "http://127.0.0.1:9/ex/jira/0f2c7e4a-0000-4000-8000-00000000c10d"  # never called

_SCRIPT = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Forge-Oauth-System"] = system_token
local calls = {}
for line in io.lines(calls_file) do
  local tab = line:find("\t", 1, true)
  calls[#calls + 1] = {line:sub(1, tab - 1), line:sub(tab + 1)}
end
local i = 0
request = function()
  i = i % #calls + 1
  wrk.headers["Authorization"] = "Bearer " .. calls[i][1]
  return wrk.format("POST", nil, nil, calls[i][2])
end
"""

_counter = 10**12


def write_calls(path: Path, signer: ForgeSigner, count: int) -> None:
    """`count` (token, body) pairs, each token and each event new."""
    global _counter
    event = fixture_json("forge-issue-updated-event.json")
    lines = []
    for _ in range(count):
        _counter += 1
        event["timestamp"] = _counter
        token = mint_fit(signer, module_key=FORGE_ENDPOINT_KEYS["issue-updated"],
                         api_base_url=API, lifetime=300)
        lines.append(token + "\t" + json.dumps(event, separators=(",", ":")))
    path.write_text("\n".join(lines) + "\n")


def script(calls: Path, system_token: str) -> str:
    return (f'calls_file = "{calls}"\nsystem_token = "{system_token}"\n') + _SCRIPT


def run_wrk(url: str, lua: str, *, seconds: int, connections: int, workdir: Path,
            server: Served) -> dict[str, float]:
    path = workdir / "forge.lua"
    path.write_text(lua)
    before = server.cpu_seconds()
    result = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(path), url],
        capture_output=True, text=True, check=True,
    )
    figures = parse_wrk(result.stdout)
    if figures["requests"]:
        figures["cpu_us"] = (server.cpu_seconds() - before) / figures["requests"] * 1e6
    return figures


def measure_forge_ack(workdir: Path, *, seconds: int, rounds: int,
                      connections: int, database: str | None = None) -> dict[str, Any]:
    """Median of alternating rounds: the Forge route (worker off) vs the empty handler;
    on `database` (a PostgreSQL URL) when given, else a SQLite file."""
    port = free_port()
    system_token = mint_system_token(3 * 3600)
    with JwksServer(ForgeSigner("bench-forge-key")) as jwks:
        env = server_env({
            "SENTRY_JIRA_DATABASE": database or str(workdir / "forge.db"),
            "SENTRY_JIRA_SECRET_KEY": FERNET_KEY,
            "SENTRY_JIRA_BASE_URL": f"http://127.0.0.1:{port}",
            "SENTRY_JIRA_WORKER": "off",
            "SENTRY_JIRA_FORGE_APP_ID": APP_ID,
            "SENTRY_JIRA_FORGE_JWKS_URL": jwks.url,
            "SENTRY_JIRA_FORGE_API_HOSTS": "http://127.0.0.1:*",
        })
        empty_port = free_port()
        empty_cmd = [sys.executable, str(REPO / "bench" / "empty_app.py"), str(empty_port)]
        calls = workdir / "calls.tsv"
        with (
            served(serve_command(port), env, port, workdir / "forge.log") as app,
            served(empty_cmd, server_env({}), empty_port, workdir / "empty.log") as empty,
        ):
            forge_url, empty_url = app.url + ROUTE, empty.url + EMPTY_PATH
            # Warm-up (also sizes the rounds): a short run on fresh tokens.
            write_calls(calls, jwks.signer, 4000)
            warm = run_wrk(forge_url, script(calls, system_token), seconds=2,
                           connections=connections, workdir=workdir, server=app)
            per_round = int(max(warm["rps"], 1000) * seconds * 2)
            forges: list[dict[str, float]] = []
            empties: list[dict[str, float]] = []
            mint_seconds = 0.0
            for _ in range(rounds):
                started = time.monotonic()
                write_calls(calls, jwks.signer, per_round)
                mint_seconds += time.monotonic() - started
                lua = script(calls, system_token)
                forges.append(run_wrk(forge_url, lua, seconds=seconds,
                                      connections=connections, workdir=workdir, server=app))
                empties.append(run_wrk(empty_url, lua, seconds=seconds,
                                       connections=connections, workdir=workdir,
                                       server=empty))
        fetches = jwks.requests
    forge, baseline = median_run(forges), median_run(empties)
    return {
        "forge": forge,
        "empty": baseline,
        "ratio": forge["rps"] / baseline["rps"] if baseline["rps"] else 0.0,
        "rounds": [(f["rps"], e["rps"]) for f, e in zip(forges, empties, strict=True)],
        "tokens_per_round": per_round,
        "mint_seconds": mint_seconds,
        "jwks_fetches": fetches,
    }


def print_forge(figures: dict[str, Any]) -> None:
    forge, empty = figures["forge"], figures["empty"]
    print("Forge route (§8.2) — every call a new FIT (RS256, cached key) and a new event\n")
    print(f"{'run':<38} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'CPU µs/req':>11}")
    for name, run in (("Forge issue-updated ack", forge),
                      ("empty Litestar POST handler", empty)):
        print(f"{name:<38} {run['rps']:>7.0f} {run['p50']:>8.2f} {run['p99']:>8.2f} "
              f"{run['non2xx']:>8.0f} {run.get('cpu_us', 0):>11.0f}")
    pairs = ", ".join(f"{f:.0f}/{e:.0f}" for f, e in figures["rounds"])
    print(f"\nrounds (forge/empty req/s): {pairs}")
    print(f"tokens minted per round: {figures['tokens_per_round']} "
          f"({figures['mint_seconds']:.1f} s in all); JWKS fetches: {figures['jwks_fetches']}")
    print(f"Forge ack / empty rate ratio: {figures['ratio']:.2f}  (target ≥ 0.50)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--postgres", action="store_true",
                        help="run the service on a throwaway PostgreSQL cluster (§9)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sentry-jira-bench-") as work:
        if not args.postgres:
            figures = measure_forge_ack(Path(work), seconds=args.seconds, rounds=args.rounds,
                                        connections=args.connections)
        else:
            from tests.support.postgres import PostgresCluster, missing_reason

            reason = missing_reason()
            if reason is not None:
                raise SystemExit(f"forge_ack --postgres: {reason}")
            cluster = PostgresCluster(durable=True)
            cluster.start()
            try:
                figures = measure_forge_ack(
                    Path(work), seconds=args.seconds, rounds=args.rounds,
                    connections=args.connections,
                    database=cluster.database(migrated=False))
            finally:
                cluster.stop()
    print("engine:", "PostgreSQL" if args.postgres else "SQLite")
    print_forge(figures)


if __name__ == "__main__":
    main()
