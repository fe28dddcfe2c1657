"""The sync-latency benchmark runs and every delivery reaches the fake Sentry (no timing is
asserted here: SPEC §7 figures are the benchmark's to print)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.sync_latency import measure_sync_latency

pytestmark = pytest.mark.e2e


def test_the_sync_latency_benchmark_measures_every_delivery(tmp_path: Path) -> None:
    figures = measure_sync_latency(deliveries=5, rate=50, workdir=tmp_path)
    assert figures["missing"] == 0
    assert figures["deliveries"] == 5
    assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["max_ms"]
