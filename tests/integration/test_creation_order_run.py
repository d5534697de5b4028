"""`harness run --order random` with real processes: a tiny run on the local backend whose
placements follow, and record, a new creation order per redeployment."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.backends.local.placer import ModelPlacer
from results.store import ResultsStore
from schedulers import CreationOrder
from settlers.economy import load_economy

pytestmark = pytest.mark.slow

HARNESS = [sys.executable, "-c", "from harness.cli import main; main()"]


def test_a_tiny_run_with_random_creation_orders(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = subprocess.run(
        [*HARNESS, "run", "--scheduler", "netmarks", "--order", "random", "--seed", "3",
         "--nodes", "2", "--items", "flour,bread", "--deployments", "6", "--sizes", "16",
         "--protocol", "http", "--repetitions", "1", "--layout-budget", "2",
         "--warmup-orders", "1", "--warmup-seconds", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    store = ResultsStore.open(out)
    assert store.manifest().config.order == "random"

    economy = load_economy(None)
    workloads = [item.name for item in economy]
    order = CreationOrder("random", 3)
    expected = [order.for_deployment(d, workloads) for d in range(6)]
    assert len(set(expected)) == 6
    placements = store.read_table("placements")
    for _, group in placements.groupby("scheduler"):
        # The same new order per redeployment under both schedulers.
        recorded = list(group.sort_values("deployment")["creation_order"])
        assert recorded == [",".join(o) for o in expected]

    # kube_default (traffic-blind) placed exactly as the model does with those orders
    # (placement seed: seed * 1000 + scheduler index).
    model = asyncio.run(ModelPlacer(economy, 2).place(
        "kube_default", 6, traffic=None, seed=3000, order=order))
    kube = placements[placements["scheduler"] == "kube_default"].sort_values("deployment")
    assert [json.loads(a) for a in kube["assignments"]] == [
        dict(sorted(p.assignments.items())) for p in model]

    report = " ".join((out / "report.md").read_text().split())  # unwrapped
    what_was_run = report.split("## What was run", 1)[1].split("## Where", 1)[0]
    assert "creation order of the Deployments: `random`, a new random order per " \
           "redeployment (seed 3, the same orders for every scheduler); 6 distinct " \
           "orders over 12 placements" in what_was_run
