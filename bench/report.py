"""The benchmark's printed report: the machine, and one table of every figure with its target.

Pure helpers only (no server, no wrk), so the smoke test can run them.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

MET, MISSED, NO_TARGET, NOT_MEASURED = "met", "MISSED", "—", "not measured"


@attrs.frozen
class Row:
    """One figure of the table: what it is, its value, its target and whether it was met."""

    figure: str
    value: str
    target: str = ""
    verdict: str = NO_TARGET


def judged(
    figure: str, value: float | None, text: str, target: str, ok: Callable[[float], bool]
) -> Row:
    """A row whose verdict is `ok(value)`; a missing value is "not measured"."""
    if value is None:
        return Row(figure, "—", target, NOT_MEASURED)
    return Row(figure, text, target, MET if ok(value) else MISSED)


def render_table(rows: Sequence[Row]) -> str:
    headers = ("figure", "measured", "SPEC §7 target", "")
    cells = [headers, *((r.figure, r.value, r.target, r.verdict) for r in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cpu_model(cpuinfo: str) -> str:
    """The first `model name` of a /proc/cpuinfo text ("unknown" when absent)."""
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "model name" and value.strip():
            return value.strip()
    return "unknown"


def machine() -> dict[str, Any]:
    try:
        model = cpu_model(Path("/proc/cpuinfo").read_text())
    except OSError:
        model = platform.processor() or "unknown"
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "load": load_average(),
    }


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def machine_line(info: Mapping[str, Any]) -> str:
    return (
        f"machine: {info['cores']} cores, {info['cpu']}, Python {info['python']}, "
        f"{info['system']}; load average {info['load']}"
    )


def summary_rows(results: Mapping[str, Any]) -> list[Row]:
    """Every figure of one run, in SPEC §7 order; parts not run are "not measured"."""
    rows: list[Row] = []
    ack = results.get("ack")
    rows.append(
        judged(
            "ack rate / empty handler rate",
            ack and ack["ratio"],
            ack and f"{ack['ratio']:.2f}",
            "≥ 0.60",
            lambda v: v >= 0.60,
        )
    )
    if ack and "ratio_with_worker" in ack:
        rows.append(Row("same, worker syncing in-process (no target)",
                        f"{ack['ratio_with_worker']:.2f}"))
    rows.append(
        judged(
            "ack p99 at 32 connections",
            ack and ack["ack"]["p99"],
            ack and f"{ack['ack']['p99']:.1f} ms (empty handler {ack['empty']['p99']:.1f} ms)",
            "< 20 ms",
            lambda v: v < 20,
        )
    )
    scale = results.get("scale")
    rows.append(
        judged(
            "ack throughput cost, 100k tenants + 1M links",
            scale and scale["cost"],
            scale and f"{scale['cost']:+.1%} (CPU/request {_percent(scale['cpu_cost'])})",
            "< 10 %",
            lambda v: v < 0.10,
        )
    )
    sync = results.get("sync")
    rows.append(
        judged(
            "ack → Sentry write p95",
            sync and sync.get("p95"),
            sync and f"{sync.get('p95', 0):.0f} ms",
            "< 1000 ms",
            lambda v: v < 1000,
        )
    )
    install = results.get("install")
    if install is None:
        rows.append(Row("install latency (cold / warm key cache)", "—", "", NOT_MEASURED))
    else:
        n = install["installs"]
        rows.append(
            Row(
                "install p50 / p95, cold key cache",
                f"{install['cold_p50']:.1f} / {install['cold_p95']:.1f} ms",
            )
        )
        rows.append(
            Row(
                "install p50 / p95, warm key cache",
                f"{install['warm_p50']:.1f} / {install['warm_p95']:.1f} ms",
            )
        )
        rows.append(
            judged(
                f"key fetches, {n} cold installs",
                install["cold_fetches"],
                str(install["cold_fetches"]),
                f"= {n} (§4.3)",
                lambda v: v == n,
            )
        )
        rows.append(
            judged(
                f"key fetches, {n} warm installs",
                install["warm_fetches"],
                str(install["warm_fetches"]),
                "= 1 (§4.3)",
                lambda v: v == 1,
            )
        )
    search = results.get("search")
    if search is None:
        rows.append(Row("search overhead (through − direct)", "—", "", NOT_MEASURED))
    else:
        for kind, label in (("key", "issue key"), ("text", "text search")):
            rows.append(
                Row(
                    f"search {label}: through / direct p50",
                    f"{search[f'{kind}_through_p50']:.2f} / {search[f'{kind}_direct_p50']:.2f} ms",
                )
            )
            rows.append(
                Row(
                    f"search {label}: overhead p50 / p95",
                    f"{search[f'{kind}_overhead_p50']:.2f} / "
                    f"{search[f'{kind}_overhead_p95']:.2f} ms",
                )
            )
    return rows


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%}"
