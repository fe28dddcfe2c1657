"""CPU time of a throwaway PostgreSQL cluster's processes (#16): the postmaster, every process
it has now (backends, checkpointer, WAL writer, …) and, through the postmaster's cutime and
cstime, the ones that have exited. Read from /proc around a benchmark run, the difference is
the server-side CPU the run cost, beside the `serve` process's own (bench/wrk.py). A backend
that has exited but is not reaped yet reads as 0 for that instant: `serve`'s pooled
connections stay open through a run, so this is noise of a few ticks at most.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.wrk import stat_cpu_seconds


def _stat(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None


def _parent(stat: str) -> int:
    return int(stat[stat.rindex(")") + 2:].split()[1])  # field 4: ppid


def cluster_cpu_seconds(data_dir: Path) -> float:
    """utime + stime of the postmaster of `data_dir` and of all its children (alive now, and
    those it has reaped); 0.0 without /proc or a running postmaster."""
    try:
        postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    own = _stat(postmaster)
    if own is None:
        return 0.0
    fields = own[own.rindex(")") + 2:].split()
    total = (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / ticks
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == postmaster:
            continue
        stat = _stat(int(entry.name))
        if stat is not None and _parent(stat) == postmaster:
            total += stat_cpu_seconds(stat, ticks)
    return total
