"""bench/throughput.py end to end at small scale: a fresh kwok cluster per scheduler, pods
created before the scheduler starts, a watch that sees every pod bound, and the figures
the BENCHMARKS.md table is rendered from, for kube-scheduler's default profile and the
firmament binder (the two the issue's target compares)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from harness.backends.k8s import K8sBinaries

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PODS, NODES = 200, 20


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_bench_throughput",
                                                  ROOT / "bench" / "throughput.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_default_and_firmament_bind_every_pod_and_are_tabled(
        k8s_binaries: K8sBinaries, tmp_path: Path) -> None:
    del k8s_binaries  # skips (or fails in CI) without the built binaries
    bench = _bench()
    out = tmp_path / "throughput.json"
    code = bench.main(["--pods", str(PODS), "--nodes", str(NODES), "--scheduler", "kube_default",
                       "--scheduler", "firmament", "--qps", "5000", "--timeout", "240",
                       "--out", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert [e["label"] for e in result["entries"]] == ["kube_default (qps 5000)", "firmament"]
    for entry in result["entries"]:
        assert not entry["error"], entry["error"]
        assert entry["bound"] == PODS and entry["bound_before_start"] == 0
        assert entry["nodes_used"] > 1  # spread over the cluster, not one node
        assert entry["all_bound_s"] > 0 and entry["pods_per_s"] > 0
        assert entry["creation"]["pods"] == PODS
        assert entry["cpu_s"]["scheduler"], "the scheduler process's CPU time is recorded"
        assert len(entry["load_avg_before"]) == 3
    firmament = result["entries"][1]
    # The binder's own account of its round: list, solve and bind times.
    assert any("bind" in line for line in firmament["binder_rounds"])
    table = bench.markdown(result)
    assert "| kube_default (qps 5000) |" in table and "| firmament |" in table
