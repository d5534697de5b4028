"""`harness run --time-budget` with real processes: a pilot, an allocation from measured
variance and cost, a measurement that keeps to the time, and the report that says so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from results.allocation import spent_seconds
from results.store import ResultsStore

pytestmark = pytest.mark.slow

HARNESS = [sys.executable, "-c", "from harness.cli import main; main()"]


def test_a_tiny_run_under_a_time_budget(tmp_path: Path) -> None:
    out = tmp_path / "run"
    budget = 20.0
    done = subprocess.run(
        [*HARNESS, "run", "--scheduler", "netmarks", "--nodes", "3", "--items", "flour,bread",
         "--deployments", "20", "--sizes", "16,65536", "--protocol", "http",
         "--repetitions", "2", "--warmup-orders", "1", "--warmup-seconds", "2",
         "--time-budget", f"{budget:g}s", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    store = ResultsStore.open(out)
    manifest = store.manifest()
    alloc = manifest.allocation
    assert alloc is not None and alloc.budget_s == budget
    assert alloc.per_layout_s > 0 and alloc.per_round_s > 0  # measured, not assumed
    assert 1 <= alloc.repetitions <= 6
    samples = store.samples()
    per_layout = samples.groupby("layout_id")["chunk_seconds"].first()
    # It stops before a layout once the time is spent: at most one layout over (+5 %).
    assert spent_seconds(samples) <= budget * 1.05 + per_layout.max()
    units = store.read_table("units")
    assert set(units["layout_id"]) <= set(samples["layout_id"])
    assert manifest.plan is not None and set(manifest.plan.layouts) == set(units["layout_id"])
    report = " ".join((out / "report.md").read_text().split())
    assert f"Time budget {budget:.0f} s of measurement" in report
    assert "## Measurement budget and variance" in report
    table = (out / "tables" / "variance_components.csv").read_text()
    assert table.startswith("scheduler,layouts,")
