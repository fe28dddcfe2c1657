"""bench/pg_cpu.py (#16): the CPU a throwaway cluster's processes used, read from /proc — the
postmaster, its children alive now and, through its cutime/cstime, those it reaped."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
from bench.pg_cpu import cluster_cpu_seconds

from tests.support.postgres import PostgresCluster


def test_the_cluster_cpu_grows_with_work_done_by_a_backend_that_then_exits(
    postgres_cluster: PostgresCluster,
) -> None:
    tick = 0.011  # /proc counts in clock ticks (1/100 s)
    before = cluster_cpu_seconds(postgres_cluster.data)
    with psycopg.connect(postgres_cluster.url("postgres")) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        backend = Path(f"/proc/{row[0]}")
        conn.execute("SELECT count(*) FROM generate_series(1, 5000000)")
        during = cluster_cpu_seconds(postgres_cluster.data)  # the backend, alive
        assert during > before + tick
    # The backend exits with its connection; once the postmaster has reaped it, its time is
    # in the postmaster's cutime/cstime and still counted.
    for _ in range(100):
        if not backend.exists():
            break
        time.sleep(0.05)
    assert not backend.exists()
    assert cluster_cpu_seconds(postgres_cluster.data) >= during - tick


def test_no_cluster_is_zero(tmp_path: Path) -> None:
    assert cluster_cpu_seconds(tmp_path) == 0.0
    (tmp_path / "postmaster.pid").write_text("not a pid\n")
    assert cluster_cpu_seconds(tmp_path) == 0.0
