"""A report rebuilt from a stored results directory alone: tables, figures, report.md."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis.report import build_report
from harness.config import build_config
from harness.experiment import Experiment
from harness.run_cmd import new_manifest
from harness.store import ResultsStore
from harness.testing import ModelCluster


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = build_config(overrides={
        "deployments": 20, "nodes": 4, "items": ["boat", "coal"], "sizes": [16, 1048576],
        "protocols": ["http"], "repetitions": 3, "layout_budget": 6, "warmup_orders": 1,
        "warmup_seconds": 0,
        "bootstrap": 200, "schedulers": ["netmarks", "random"],
    })
    root = tmp_path_factory.mktemp("results") / "run"
    store = ResultsStore.create(root, new_manifest(cfg))
    backend = ModelCluster(cfg.load_economy(), cfg.nodes)
    asyncio.run(Experiment(cfg, store, backend.backend(), sweep=backend.sweep).run())
    return root


def test_report_is_rebuilt_from_the_directory_alone(results: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(results, copy)  # nothing but the files
    report = build_report(copy)
    for name in ("response_time", "inter_node_transfers", "inter_node_bytes", "layouts",
                 "scheduling_time", "headline"):
        for ext in ("csv", "md", "tex"):
            assert (copy / "tables" / f"{name}.{ext}").stat().st_size > 0
    for fig in ("response_time_by_item", "response_time_vs_size", "layout_frequency",
                "traffic_heatmap"):
        assert (copy / "figures" / f"{fig}.png").stat().st_size > 0
        assert (copy / "figures" / f"{fig}.svg").stat().st_size > 0
    text = report.path.read_text()
    assert "kube_default vs netmarks vs random" in text
    assert "37 %" in text and "50 %" in text and "80 % vs 35 %" in text


def test_tables_are_consistent_with_the_raw_samples(results: Path) -> None:
    build_report(results, figures=False)
    rt = pd.read_csv(results / "tables" / "response_time.csv")
    assert set(rt["scheduler"]) == {"kube_default", "netmarks", "random"}
    assert len(rt) == 2 * 2 * 1 * 3  # items x sizes x protocols x schedulers
    assert (rt["ci_low"] <= rt["mean"]).all() and (rt["mean"] <= rt["ci_high"]).all()
    base = rt[rt["scheduler"] == "kube_default"]
    assert (base["reduction_pct"] == 0).all()
    tr = pd.read_csv(results / "tables" / "inter_node_transfers.csv")
    assert tr["mean"].between(0, 100).all()
    layouts = pd.read_csv(results / "tables" / "layouts.csv")
    assert (layouts["redeployments"] == 20).all()


def test_report_refuses_an_empty_run(tmp_path: Path) -> None:
    ResultsStore.create(tmp_path / "empty", {"config": {}})
    with pytest.raises(Exception, match=r"placements\.parquet is missing|no measurements"):
        build_report(tmp_path / "empty")
