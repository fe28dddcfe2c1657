"""Shared helpers of the benchmark: serving a process, driving it with wrk, reading wrk.

Every server is a real process on a loopback port; its CPU time is read from
`/proc/<pid>/stat` around each wrk run, so a figure can be given per request as well as per
second (CPU per request moves far less than req/s when other work shares the machine).
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import attrs
import httpx

REPO = Path(__file__).resolve().parents[1]
for _path in (str(REPO / "src"), str(REPO)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from tests.support.process import free_port, server_env, wait_until_ready  # noqa: E402

__all__ = ["REPO", "Served", "free_port", "served", "server_env"]

# Per request: a unique delivery id (a nonce per script written, then a counter) and, when
# `rotate` lists values, the next value of each rotated header in turn. The nonce comes from
# Python: LuaJIT's math.random starts from the same seed in every wrk run, so ids drawn from it
# repeat across rounds and a later round would measure duplicates, not new deliveries.
_REQUEST_SCRIPT = """
local counter = 0
local prefix = run_nonce
request = function()
  counter = counter + 1
  wrk.headers["X-Atlassian-Webhook-Identifier"] = prefix .. "-" .. counter
  for name, values in pairs(rotated) do
    wrk.headers[name] = values[(counter % #values) + 1]
  end
  return wrk.format("POST", nil, nil, nil)
end
"""


@attrs.define
class Served:
    """A running server process: its base URL and its CPU time so far."""

    url: str
    proc: subprocess.Popen[bytes]

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.proc.pid)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (0.0 where there is no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    return stat_cpu_seconds(stat, os.sysconf("SC_CLK_TCK"))


def stat_cpu_seconds(stat: str, ticks_per_second: int) -> float:
    """utime + stime of one `/proc/<pid>/stat` line (the command may hold spaces and ')')."""
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / ticks_per_second


@contextmanager
def served(command: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[Served]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(url + "/health", proc, timeout=60)
            yield Served(url, proc)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def serve_command(port: int) -> list[str]:
    return [sys.executable, "-m", "adapters.cli.main", "serve", "--port", str(port)]


def wrk_script(
    headers: Mapping[str, str], body: bytes, rotate: Mapping[str, Sequence[str]] | None = None
) -> str:
    """The Lua script of one wrk run: fixed headers, rotated headers, a unique delivery id."""
    lines = ['wrk.method = "POST"', f"wrk.body = {lua_string(body.decode())}",
             f"run_nonce = {lua_string(secrets.token_hex(8))}"]
    lines += [f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items()]
    lines.append("rotated = {")
    for name, values in (rotate or {}).items():
        if not values:
            raise ValueError(f"no values to rotate for {name}")
        items = ",\n    ".join(lua_string(v) for v in values)
        lines.append(f"  [{lua_string(name)}] = {{\n    {items}\n  }},")
    lines.append("}")
    return "\n".join(lines) + _REQUEST_SCRIPT


def wrk(
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    seconds: int,
    connections: int,
    workdir: Path,
    rotate: Mapping[str, Sequence[str]] | None = None,
    server: Served | None = None,
    db_cpu: Callable[[], float] | None = None,
) -> dict[str, float]:
    """One wrk run (one thread); with `server`, also its CPU time per request (µs); with
    `db_cpu` (a database server's CPU seconds so far), that per request too (`db_cpu_us`).
    `load1`: the 1-minute load average at the end of the run."""
    script = workdir / "post.lua"
    script.write_text(wrk_script(headers, body, rotate))
    before = server.cpu_seconds() if server else 0.0
    db_before = db_cpu() if db_cpu else 0.0
    result = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = parse_wrk(result.stdout)
    if server is not None and figures["requests"]:
        figures["cpu_us"] = (server.cpu_seconds() - before) / figures["requests"] * 1e6
    if db_cpu is not None and figures["requests"]:
        figures["db_cpu_us"] = (db_cpu() - db_before) / figures["requests"] * 1e6
    figures["load1"] = os.getloadavg()[0]
    return figures


def lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def parse_wrk(output: str) -> dict[str, float]:
    """req/s, total requests, p50/p99 (ms) and non-2xx count of wrk's `--latency` output."""

    def millis(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if not match:
            raise RuntimeError(f"no {label}% latency in wrk output:\n{output}")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"^\s*(\d+) requests in ", output, re.M)
    statuses = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return {
        "rps": float(rate.group(1)) if rate else 0.0,
        "requests": float(total.group(1)) if total else 0.0,
        "p50": millis("50"),
        "p99": millis("99"),
        "non2xx": float(statuses.group(1)) if statuses else 0.0,
    }


@attrs.frozen
class Target:
    """One server and the requests wrk sends it."""

    url: str
    headers: Mapping[str, str]
    body: bytes
    server: Served | None = None
    rotate: Mapping[str, Sequence[str]] | None = None
    db_cpu: Callable[[], float] | None = None  # a database server's CPU seconds so far


def alternating_rounds(
    targets: Sequence[Target],
    *,
    rounds: int,
    seconds: int,
    connections: int,
    workdir: Path,
    warmup_seconds: int = 2,
) -> list[list[dict[str, float]]]:
    """A warm-up of each target, then `rounds` rounds of each in turn (A, B, A, B, …), so
    that background load on the machine falls on every target alike. One list per target."""
    for target in targets:
        wrk(
            target.url,
            target.headers,
            target.body,
            seconds=warmup_seconds,
            connections=connections,
            workdir=workdir,
            rotate=target.rotate,
        )
    runs: list[list[dict[str, float]]] = [[] for _ in targets]
    for _ in range(rounds):
        for target, results in zip(targets, runs, strict=True):
            results.append(
                wrk(
                    target.url,
                    target.headers,
                    target.body,
                    seconds=seconds,
                    connections=connections,
                    workdir=workdir,
                    rotate=target.rotate,
                    server=target.server,
                    db_cpu=target.db_cpu,
                )
            )
    return runs


def check_once(url: str, headers: Mapping[str, str], body: bytes, expect: int) -> None:
    response = httpx.post(
        url,
        content=body,
        headers={**headers, "X-Atlassian-Webhook-Identifier": f"check-{time.time_ns()}"},
        timeout=5,
    )
    if response.status_code != expect:
        raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:200]}")


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median rate (its latencies belong to it)."""
    return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (`fraction` 0.5 = p50, 0.95 = p95)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = max(1, -(-round(fraction * 1000) * len(ordered) // 1000))
    return ordered[min(rank, len(ordered)) - 1]
