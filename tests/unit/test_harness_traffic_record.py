"""Which traffic each scheduler placed with: the warm-up's start t0 handed to the
in-cluster schedulers (chart values), and the per-scheduler record in the manifest and
the report, on every backend."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from analysis.report import build_report
from harness.backends.kubernetes import (
    KubernetesOptions,
    KubernetesPlacer,
    PhaseValues,
    Release,
)
from harness.backends.kwok import KwokPlacer
from harness.backends.registry import describe
from harness.experiment import Experiment, scheduler_traffic
from harness.testing import ModelCluster
from results.config import build_config
from results.manifest import new_manifest
from results.store import ResultsStore
from schedulers import TrafficMatrix
from settlers.economy import load_economy

T0 = 1_764_629_403.0
WARMUP = TrafficMatrix({("bread", "flour"): 100.0}, since=T0, until=T0 + 23,
                       source="prometheus http://127.0.0.1:9090 (L4), average since "
                              "2025-12-01T22:50:03Z")


def test_the_run_records_the_warm_up_start_and_each_schedulers_traffic(tmp_path: Path) -> None:
    cfg = build_config(overrides={
        "deployments": 3, "nodes": 3, "items": ["bread"], "sizes": [16], "protocols": ["http"],
        "repetitions": 1, "layout_budget": 10, "warmup_orders": 1, "warmup_seconds": 0,
        "bootstrap": 50, "schedulers": ["netmarks"],
    })
    store = ResultsStore.create(tmp_path / "run", new_manifest(cfg, describe(cfg.backend)))
    backend = ModelCluster(cfg.load_economy(), cfg.nodes)
    before = time.time()
    asyncio.run(Experiment(cfg, store, backend.backend(), sweep=backend.sweep).run())
    m = store.manifest()
    assert m.warmup_since is not None and m.warmup_until is not None
    assert before <= m.warmup_since <= m.warmup_until <= time.time()
    used = m.scheduler_traffic
    assert used["kube_default"] == "none (traffic-blind)"
    assert used["netmarks"].startswith("Python model; the warm-up's traffic matrix: ")
    assert "average since" in used["netmarks"]
    # A resumed run reads the matrix back with its interval.
    resumed = asyncio.run(Experiment(cfg, store, backend.backend()).warmup())
    assert resumed is not None
    assert (resumed.since, resumed.until) == (m.warmup_since, m.warmup_until)
    text = build_report(store.root, figures=False).path.read_text()
    assert "traffic each scheduler placed with (source and interval):" in text
    assert f"  - netmarks: {used['netmarks']}" in text


def test_models_without_a_record_of_their_own_say_they_used_the_warm_up_matrix() -> None:
    backend = ModelCluster(load_economy(), 3)
    assert scheduler_traffic(backend, "random", WARMUP) == "none (traffic-blind)"
    text = scheduler_traffic(backend, "firmament", WARMUP)
    assert text == ("Python model; the warm-up's traffic matrix: prometheus "
                    "http://127.0.0.1:9090 (L4), average since 2025-12-01T22:50:03Z (23 s), "
                    "1 pairs")
    assert "no vote" in scheduler_traffic(backend, "netmarks", TrafficMatrix())


def test_kwok_feeds_its_host_schedulers_the_warm_up_matrix() -> None:
    backend = object.__new__(KwokPlacer)  # no cluster: the description needs none
    assert backend.traffic_description("kube_default", WARMUP) == "none (traffic-blind)"
    text = backend.traffic_description("netmarks", WARMUP)
    assert text.startswith("NetMARKS extender on this machine (--traffic file): the warm-up's")
    assert "average since 2025-12-01T22:50:03Z (23 s)" in text


def _kube(tmp_path: Path, mode: str, values: str | None = None) -> KubernetesPlacer:
    release = object.__new__(Release)  # no cluster: the description needs none
    files: tuple[Path, ...] = ()
    if values is not None:
        (tmp_path / "mine.yaml").write_text(values)
        files = (tmp_path / "mine.yaml",)
    release.options = KubernetesOptions(schedulers=mode, values_files=files,
                                        prometheus_url="http://prom.monitoring:9090")
    placer = object.__new__(KubernetesPlacer)
    placer.release = release
    placer.extender_warnings = {}   # what __init__ sets: no NetMARKS phase has run yet
    return placer


def test_kubernetes_in_cluster_schedulers_average_since_the_warm_up(tmp_path: Path) -> None:
    chart = _kube(tmp_path, "chart")
    assert chart.traffic_description("netmarks", WARMUP) == (
        "in-cluster NetMARKS extender: Prometheus http://prom.monitoring:9090, average since "
        "the warm-up's start 2025-12-01T22:50:03Z (traffic.since)")
    assert chart.user_traffic_window() is None
    assert "firmament scheduler" in chart.traffic_description("firmament", WARMUP)
    assert chart.traffic_description("netmarks", None).endswith(
        "average since the scheduler's start")
    window = _kube(tmp_path, "chart", "traffic: {window: 600}\nimage: {tag: x}\n")
    assert window.user_traffic_window() == 600
    assert window.traffic_description("netmarks", WARMUP).endswith(
        "sliding window of 600 s (traffic.window in your values files)")
    assert "(--traffic file)" in _kube(tmp_path, "host").traffic_description("netmarks", WARMUP)
    assert "not set by the harness" in _kube(tmp_path, "external").traffic_description(
        "firmament", WARMUP)


def test_phase_values_pass_the_warm_up_start_to_the_chart() -> None:
    phase = PhaseValues(economy=load_economy(), scheduler_name="netmarks-scheduler",
                        component="netmarks", traffic_since=T0 + 0.25)
    assert phase.render()["traffic"] == {"since": "2025-12-01T22:50:03.250Z"}
    assert "traffic" not in PhaseValues(economy=load_economy()).render()


@pytest.mark.parametrize("window", ["traffic: {window: 0}\n", "traffic: {since: ''}\n", ""])
def test_no_user_window_means_since(tmp_path: Path, window: str) -> None:
    assert _kube(tmp_path, "chart", window).user_traffic_window() is None
