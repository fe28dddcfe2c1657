"""The worker's own CPU per delivery, in process: `python bench/worker_cpu.py [--null-sentry]`.

A tool for working on the sync path (issue 15), not a SPEC §7 figure. The database is
prepared as `bench/e2e.py` prepares it (one tenant, one bound org, 1,000 linked issues);
N status changes into "done" are recorded in the inbox first; then the production container
(`adapters.wiring.bootstrap`) starts its worker on uvloop (as uvicorn runs `serve`), and the
process's CPU time is read from the first claim until the inbox is empty. With
`--null-sentry` the worker's Sentry port answers at once in process (no HTTP): what is left
is claims, reads, decisions, plans, journal and settles. Without it the fast fake Sentry
(`bench/fast_sentry.py`, its own process) is called over loopback HTTP, as in `--e2e`.
`--profile FILE` writes a cProfile of the drain (read it with `python -m pstats FILE`).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import uvloop

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE.parent / "src"), str(_HERE.parent)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from adapters.config import load_settings  # noqa: E402
from adapters.wiring import bootstrap  # noqa: E402
from bench.e2e import ISSUES, FastSentry, _env, delivery_body, prepare  # noqa: E402
from bench.wrk import free_port  # noqa: E402
from core.model.bindings import Binding  # noqa: E402
from core.model.sentry import SentryIssue, SentryMember  # noqa: E402
from ports.inbox import NewDelivery  # noqa: E402


class NullSentry:
    """Sentry answering every write at once, in process."""

    def __init__(self) -> None:
        self.writes = 0

    async def update_issue(self, binding: Binding, issue_id: str,
                           payload: dict[str, Any]) -> None:
        self.writes += 1

    async def get_issue_status(self, binding: Binding, issue_id: str) -> str:
        return "unresolved"

    async def members_by_email(self, binding: Binding, email: str) -> list[SentryMember]:
        return []

    async def check_organization(self, binding: Binding) -> None:
        return None

    async def get_issue(self, binding: Binding, issue_id: str) -> SentryIssue:
        raise NotImplementedError


async def drain(env: dict[str, str], deliveries: int, *, null_sentry: bool,
                profile: Path | None) -> dict[str, float]:
    container = bootstrap(load_settings(env))
    assert container.worker is not None
    container.settings = attrs.evolve(container.settings, run_worker=False)
    await container.startup()  # checkpoints; the worker is started below
    base = datetime.now(UTC) - timedelta(days=1)
    for i in range(deliveries):
        issue = i % ISSUES + 1
        await container.inbox.record(NewDelivery(
            tenant_id=1, delivery_id=f"cpu-{i}", issue_id=str(100000 + issue),
            issue_key=f"BEN-{issue}", body=delivery_body(issue, base + timedelta(milliseconds=i)),
            received_at=datetime.now(UTC)))
    worker = container.worker
    null = NullSentry()
    if null_sentry:
        worker.ports = attrs.evolve(worker.ports, sentry=null)
    profiler = cProfile.Profile() if profile else None
    cpu0, wall0 = time.process_time(), time.monotonic()
    if profiler:
        profiler.enable()
    await worker.start()
    while (await container.inbox.stats(container.clock.now())).pending:
        await asyncio.sleep(0.05)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    if profiler:
        profiler.disable()
        profiler.dump_stats(str(profile))
    await worker.stop()
    await container.shutdown()
    return {"cpu_us": cpu / deliveries * 1e6, "wall_s": wall, "rate": deliveries / wall,
            "null_writes": float(null.writes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=5000)
    parser.add_argument("--null-sentry", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    for n in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            sentry = FastSentry()
            try:
                env = _env(Path(tmp), free_port())
                prepare(env, sentry.url)
                got = uvloop.run(drain(env, args.deliveries, null_sentry=args.null_sentry,
                                        profile=args.profile if n == 0 else None))
            finally:
                sentry.close()
        print(f"round {n + 1}: {args.deliveries} deliveries, worker CPU {got['cpu_us']:.0f} µs "
              f"each, {got['rate']:.0f}/s, {'null' if args.null_sentry else 'fast fake'} "
              "Sentry", flush=True)


if __name__ == "__main__":
    sys.exit(main())
