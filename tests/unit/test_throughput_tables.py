"""bench/throughput.py without a cluster: which entries a run measures, flag validation,
and the table it renders."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_bench_throughput_unit",
                                                  ROOT / "bench" / "throughput.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Not registered in sys.modules: tests/unit/test_docs_numbers.py loads it like this.
    spec.loader.exec_module(module)
    return module


def test_kube_schedulers_run_per_client_setting_binders_once(bench: ModuleType) -> None:
    todo, skipped = bench.entries(["kube_default", "netmarks", "firmament", "no-such"],
                                  [None, 5000])
    assert [e.label for e in todo] == [
        "kube_default", "kube_default (qps 5000)", "netmarks", "netmarks (qps 5000)",
        "firmament"]
    assert todo[1].client_connection() == {"qps": 5000, "burst": 5000}
    assert todo[0].client_connection() is None
    assert skipped == ["no-such: no such policy on this branch"]


def test_model_only_policies_are_skipped_with_the_reason(bench: ModuleType) -> None:
    _, skipped = bench.entries(["random"], [None])
    assert skipped == ["random: no real-scheduler counterpart"]


@pytest.mark.parametrize("argv, message", [
    (["--qps", "fast"], "--qps takes 'default'"),
    (["--pods", "0"], "--pods must be >= 1"),
    (["--pods", "3000", "--nodes", "2"], "do not fit"),
    (["--scheduler", "random"], "no real-scheduler counterpart"),
])
def test_bad_flags_say_why(bench: ModuleType, argv: list[str], message: str,
                           capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench.main(argv)
    assert message in capsys.readouterr().err


def _row(label: str, policy: str, qps: int | None, seconds: float) -> dict[str, Any]:
    return {"label": label, "policy": policy, "pods_per_s": 1000 / seconds,
            "steady_pods_per_s": 1200 / seconds, "all_bound_s": seconds, "error": "",
            "client_connection": {"qps": qps, "burst": qps} if qps else
            "kube-scheduler defaults (qps 50, burst 100)",
            "cpu_s": {"scheduler": {"x": 1.0}, "control_plane": {"kube-apiserver": 2.0}},
            "load_avg_before": [1.0, 1.0, 1.0], "load_avg_after": [2.0, 1.0, 1.0],
            "bound": 1000, "first_bind_s": 1.0, "binder_rounds": []}


def test_table_gives_ratios_to_the_fastest_default(bench: ModuleType) -> None:
    firmament = _row("firmament", "firmament", None, 5.0)
    firmament["binder_rounds"] = [
        "2026-12-02 08:02:05,685 INFO schedulers.firmament: round: 1000 pending, 1000 bound, "
        "0 failed, 0 unschedulable in 4.500 s (list 0.500, solve 0.300, bind 3.700)"]
    table = bench.markdown({"entries": [
        _row("kube_default", "kube_default", None, 20.0),
        _row("kube_default (qps 5000)", "kube_default", 5000, 10.0),
        firmament], "poseidon": bench.POSEIDON})
    lines = table.splitlines()
    assert "| 0.50 |" in lines[2] and "| 1.00 |" in lines[3] and "| 2.00 |" in lines[4]
    # CPU per pod: 1 s of scheduler CPU over 1000 pods; 3 s of CPU in 5 s: 0.6 cores.
    assert "| firmament | 1.0 s | 1.00 ms | 2.00 ms | 0.00 ms | 0.00 ms | 0.60 |" in lines
    assert "| firmament | 1000 | 4.5 s | 0.5 s | 0.30 s | 3.7 s | 270 |" in lines
    assert "| 25 s | 12 s |" in lines[-1]
