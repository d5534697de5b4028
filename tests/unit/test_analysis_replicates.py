"""The combined statistics of a replicated run and its report (analysis.replicates)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from analysis.replicates import combine, replicate_dirs, t_interval


def test_t_interval_matches_a_hand_computation() -> None:
    mean, sd, low, high = t_interval([10.0, 14.0, 12.0])
    # mean 12, SD 2 (deviations -2, 2, 0: sum of squares 8 over 2 df), t(0.975, 2 df)
    # = 4.302653 from a table: half-width 4.302653 * 2 / sqrt(3) = 4.968275.
    assert (mean, sd) == (12.0, 2.0)
    assert low == pytest.approx(12 - 4.968275, abs=1e-5)
    assert high == pytest.approx(12 + 4.968275, abs=1e-5)
    # 90 %: t(0.95, 2 df) = 2.919986.
    assert t_interval([10.0, 14.0, 12.0], 0.90)[3] == pytest.approx(12 + 2.919986 * 2 / 3**0.5)


def test_t_interval_needs_two_finite_values() -> None:
    mean, sd, low, high = t_interval([3.0, math.nan])
    assert mean == 3.0 and math.isnan(sd) and math.isnan(low) and math.isnan(high)
    assert all(math.isnan(x) for x in t_interval([]))


def test_combine_gives_mean_sd_range_and_the_ratio_to_the_within_run_se() -> None:
    est = pd.DataFrame({
        "metric": "rt_reduction_largest_pct", "group": "1048576 B", "scheduler": "netmarks",
        "value": [27.0, 48.0, 36.0], "ci_low": [23.08, 44.08, 32.08],
        "ci_high": [30.92, 51.92, 39.92],  # half-width 3.92: within-run SE 2.0
        "replicate": [1, 2, 3], "seed": [1, 2, 3]})
    row = combine(est).iloc[0]
    assert row["replicates"] == 3 and row["mean"] == pytest.approx(37.0)
    sd = (((27 - 37) ** 2 + (48 - 37) ** 2 + (36 - 37) ** 2) / 2) ** 0.5
    assert row["sd_between"] == pytest.approx(sd)
    assert (row["min"], row["max"]) == (27.0, 48.0)
    assert row["se_within"] == pytest.approx(2.0, rel=1e-3)
    assert row["sd_between_over_se_within"] == pytest.approx(sd / 2.0, rel=1e-3)
    assert row["ci_high"] - row["mean"] == pytest.approx(4.302653 * sd / 3**0.5, rel=1e-6)


def _replicated_dir(root: Path) -> Path:
    from harness.backends.registry import describe
    from harness.experiment import Experiment
    from harness.replicates import run_replicates
    from harness.testing import ModelCluster
    from results import provenance
    from results.config import ExperimentConfig, build_config
    from results.manifest import new_manifest
    from results.store import ResultsStore

    cfg = build_config(overrides={
        "deployments": 6, "nodes": 3, "items": ["flour", "sword"], "sizes": [16, 65536],
        "protocols": ["http", "grpc"], "repetitions": 2, "layout_budget": 100,
        "warmup_orders": 1, "warmup_seconds": 0, "bootstrap": 100, "replicates": 3})
    store = ResultsStore.create(root, new_manifest(cfg, describe(cfg.backend)))

    def one(c: ExperimentConfig, s: ResultsStore) -> None:
        cluster = ModelCluster(c.load_economy(), c.nodes, seed=c.seed, noise_ms=1.0)
        asyncio.run(Experiment(c, s, cluster.backend(), sweep=cluster.sweep).run())
        s.update_manifest(finished_at=provenance.now())

    run_replicates(cfg, store, one)
    return root


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _replicated_dir(tmp_path_factory.mktemp("replicated") / "run")


def test_report_of_a_replicated_directory(replicated: Path) -> None:
    from analysis.replicates_report import build_replicated_report

    root = replicated
    report = build_replicated_report(root)
    reps = replicate_dirs(root)
    assert [r.index for r in reps] == [1, 2, 3]
    for r in reps:  # every replicate got its own report (tables, no figures)
        assert (r.root / "report.md").is_file() and (r.root / "tables" / "headline.csv").is_file()
        assert not (r.root / "figures").exists()
        assert f"replicate {r.index} of a replicated run" in (r.root / "report.md").read_text()
    text = report.path.read_text()
    first = text.split("## ")[1]  # the first section: K replications, seeds, reports
    assert first.startswith("Replications") and "3 independent replications" in first
    for r in reps:
        assert str(r.seed) in first and f"replicates/r{r.index}/report.md" in first
    assert "t(K-1)" in text and "SD / within SE" in text
    assert (root / "figures" / "replicates.svg").is_file()

    combined = pd.read_csv(root / "tables" / "replicates_combined.csv")
    est = pd.read_csv(root / "tables" / "replicate_estimates.csv")
    metrics = set(combined["metric"])
    assert {"rt_reduction_largest_pct", "rt_reduction_overall_pct",
            "rt_reduction_by_size_pct", "rt_reduction_by_protocol_pct",
            "rt_reduction_by_class_pct", "inter_node_transfers_pct",
            "inter_node_bytes_saved_pct", "distinct_layouts"} <= metrics
    # The combined row is the t interval over the replicates' own estimates.
    row = combined[(combined["metric"] == "rt_reduction_largest_pct")
                   & (combined["scheduler"] == "netmarks")].iloc[0]
    values = est[(est["metric"] == "rt_reduction_largest_pct")
                 & (est["scheduler"] == "netmarks")].sort_values("replicate")["value"]
    assert len(values) == 3
    mean, sd, low, high = t_interval(list(values))
    assert (row["mean"], row["sd_between"], row["ci_low"], row["ci_high"]) == pytest.approx(
        (mean, sd, low, high))
    # ... and each replicate's value is the one its own report's by-size table holds.
    for r in reps:
        by_size = pd.read_csv(r.root / "tables" / "reduction_by_size.csv")
        mine = by_size[(by_size["scheduler"] == "netmarks") & (by_size["size"] == 65536)]
        value = est[(est["metric"] == "rt_reduction_largest_pct") & (est["replicate"] == r.index)
                    & (est["scheduler"] == "netmarks")]["value"].iloc[0]
        assert float(mine["reduction_pct"].iloc[0]) == pytest.approx(value)
    beside = pd.read_csv(root / "tables" / "beside_paper_combined.csv")
    assert set(beside["replicates_measured"]) <= {0, 3}
    assert "This run beside the paper (mean over replicates)" in text


def test_report_cmd_prints_the_combined_headline(replicated: Path) -> None:
    from rich.console import Console

    from harness.report_cmd import print_report

    root = replicated
    console = Console(record=True, width=200)
    print_report(root, console)
    out = console.export_text()
    assert "Headline over 3 replicates" in out
    assert "replicate r3 (seed" in out and "report:" in out


def test_a_replicated_directory_without_measurements_says_so(tmp_path: Path) -> None:
    from analysis.replicates_report import build_replicated_report
    from harness.backends.registry import describe
    from results.config import build_config
    from results.manifest import new_manifest
    from results.store import ResultsStore

    cfg: Any = build_config(overrides={"replicates": 2, "deployments": 4})
    ResultsStore.create(tmp_path / "run", new_manifest(cfg, describe(cfg.backend)))
    with pytest.raises(ValueError, match="no replicate has measurements"):
        build_replicated_report(tmp_path / "run")
