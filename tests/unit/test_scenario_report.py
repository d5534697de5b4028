"""The scenario report on synthetic tables: recovery after a shift, a scheduler that
never recovers, what a migration cost (failed and slowed orders), inter-node bytes per
phase, and the files written for a scenario-only results directory."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from analysis import scenario_metrics as sm
from analysis.report import build_report
from analysis.scenario import build_scenario_report, is_scenario_only, load_scenario_data
from harness.cli import app

PHASES = [{"name": "chains", "duration_s": 40}, {"name": "shared", "duration_s": 40}]
SPANS = [sm.PhaseSpan("chains", 0.0, 40.0), sm.PhaseSpan("shared", 40.0, 80.0)]
TIMES = np.round(np.arange(0, 80, 0.1), 1)  # 10 orders/s, intended send times


def _orders(scheduler: str, latency: np.ndarray, failed: np.ndarray | None = None
            ) -> pd.DataFrame:
    failed = np.zeros(len(TIMES), bool) if failed is None else failed
    return pd.DataFrame({
        "scheduler": scheduler, "phase": np.where(TIMES < 40, "chains", "shared"),
        "t_s": TIMES, "item": "boat", "size": 65536,
        "latency_ms": np.where(failed, np.nan, latency), "ok": ~failed,
        "error": np.where(failed, "connection reset", ""),
    })


def _tables() -> dict[str, dict[str, pd.DataFrame]]:
    # kube_default: 10 ms, then 20 ms from the shift on: settled at once, no moves.
    steady = np.where(TIMES < 40, 10.0, 20.0)
    # netmarks: after the shift 50 ms for 8 s, then settled at 20 ms. During its one
    # move (20..22 s) the orders sent in 20.0..20.4 fail and 20.5..20.9 take 30 ms.
    shifted = np.where(TIMES < 40, 10.0, np.where(TIMES < 48, 50.0, 20.0))
    shifted = np.where((TIMES >= 20.5) & (TIMES < 21.0), 30.0, shifted)
    failed = (TIMES >= 20.0) & (TIMES < 20.5)
    # firmament: after the shift its response time keeps growing: never settles.
    growing = np.where(TIMES < 40, 10.0, 20.0 + 10.0 * (TIMES - 40))
    migration = {
        "scheduler": "netmarks", "phase": "chains", "pod": "boat-0", "new_pod": "boat-1",
        "workload": "boat", "src_node": "node-1", "dst_node": "node-2", "strategy": "evict",
        "reason": "rebalance", "decided_s": 20.0, "ready_s": 21.0, "done_s": 22.0,
        "ok": True, "error": "",
    }

    def events(s: str, extra: list[dict[str, object]]) -> pd.DataFrame:
        rows = [{"scheduler": s, "phase": p.name, "t_s": p.start_s, "kind": "phase",
                 "detail": p.name} for p in SPANS] + extra
        return pd.DataFrame(rows)

    def traffic(s: str, inter: tuple[int, int]) -> pd.DataFrame:
        return pd.DataFrame({
            "scheduler": s, "phase": ["chains", "shared"], "start_s": [0.0, 40.0],
            "end_s": [40.0, 80.0], "inter_node_bytes": list(inter),
            "intra_node_bytes": [1000 - inter[0], 1000 - inter[1]], "bytes": [1000, 1000]})

    drain = {"scheduler": "netmarks", "phase": "shared", "t_s": 40.2, "kind": "drain",
             "detail": "node-2"}
    return {
        "kube_default": {"orders": _orders("kube_default", steady),
                         "events": events("kube_default", []),
                         "traffic": traffic("kube_default", (600, 800))},
        "netmarks": {"orders": _orders("netmarks", shifted, failed),
                     "migrations": pd.DataFrame([migration]),
                     "events": events("netmarks", [drain]),
                     "traffic": traffic("netmarks", (300, 200))},
        "firmament": {"orders": _orders("firmament", growing),
                      "events": events("firmament", []),
                      "traffic": traffic("firmament", (600, 800))},
    }


@pytest.fixture
def scenario_dir(tmp_path: Path) -> Path:
    root = tmp_path / "run"
    (root / "scenario").mkdir(parents=True)
    (root / "scenario" / "scenario.yaml").write_text(yaml.safe_dump({
        "name": "shift", "rebalance_interval_s": 5,
        "phases": [{**p, "orders": {"items": ["boat"], "sizes": [65536], "rate": 10},
                    "events": []} for p in PHASES]}))
    for scheduler, tables in _tables().items():
        (root / "scenario" / scheduler).mkdir()
        for name, frame in tables.items():
            frame.to_parquet(root / "scenario" / scheduler / f"{name}.parquet")
    return root


def _recovery(root: Path) -> pd.DataFrame:
    data = load_scenario_data(root)
    return sm.recovery_table(data.tables["orders"], data.tables["events"], data.phases,
                             data.schedulers).set_index("scheduler")


def test_recovery_after_a_shift_is_when_the_rolling_median_settles(
        scenario_dir: Path) -> None:
    rec = _recovery(scenario_dir)
    net = rec.loc["netmarks"]
    # The drain 0.2 s after the boundary is the same disturbance.
    assert net["trigger"] == "phase shared begins + drain node-2"
    assert net["settled_median_ms"] == 20.0
    # 8 s at 50 ms, then the 5 s median turns once the 20 ms orders are the majority of
    # its window: 2.5 s later.
    assert net["status"] == "recovered"
    assert abs(net["recovery_s"] - 10.5) <= 0.15
    assert rec.loc["kube_default", "recovery_s"] < 0.5  # settled from the start


def test_a_scheduler_that_never_settles_is_not_recovered(scenario_dir: Path) -> None:
    firm = _recovery(scenario_dir).loc["firmament"]
    assert firm["status"] == "not recovered"
    assert math.isnan(firm["recovery_s"])
    # Its rolling median does pass its last half's median: the drift is what says no.
    assert firm["note"] == "still drifting at the phase's end: 269.5 ms, then 369.5 ms"


def _one(latency: np.ndarray, failed: np.ndarray | None = None,
         events: list[dict[str, object]] | None = None) -> pd.Series:
    orders = _orders("x", latency, failed)
    ev = pd.DataFrame(events or [], columns=["scheduler", "phase", "t_s", "kind", "detail"])
    table = sm.recovery_table(orders, ev, SPANS, ["x"])
    return table.iloc[0]


def test_still_slow_when_the_next_event_comes_is_not_recovered() -> None:
    # 50 ms from the shift until a degrade 10 s later; settled at 20 ms after it.
    latency = np.where((TIMES >= 40) & (TIMES < 50), 50.0, 20.0)
    degrade = {"scheduler": "x", "phase": "shared", "t_s": 50.0, "kind": "degrade",
               "detail": "node-1"}
    first = _one(latency, events=[degrade])
    assert first["watched_s"] == 10.0
    assert first["status"] == "not recovered"
    assert first["note"] == "not within 10 % in the 10 s watched"


def test_orders_failing_to_the_end_are_not_recovered() -> None:
    failed = TIMES >= 40
    row = _one(np.full(len(TIMES), 20.0), failed)
    assert row["status"] == "not recovered"
    assert row["note"] == "half or more of the phase's last-half orders failed"


def test_a_noisy_but_steady_phase_recovers_at_once() -> None:
    # 6 orders/s with lognormal noise: a 5 s median moves by 10 % by chance, which must
    # not read as a late recovery or a phase that never settled (over 20 runs).
    recovery = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        t = np.sort(rng.uniform(0, 80, 480))
        orders = pd.DataFrame({
            "scheduler": "x", "phase": np.where(t < 40, "chains", "shared"), "t_s": t,
            "latency_ms": 20 * np.exp(rng.normal(0, 0.5, len(t))), "ok": True, "error": ""})
        row = sm.recovery_table(orders, pd.DataFrame(), SPANS, ["x"]).iloc[0]
        recovery.append(row["recovery_s"] if row["status"] == "recovered" else math.inf)
    assert sum(math.isinf(r) for r in recovery) <= 1
    assert float(np.median(recovery)) < 2.0


def test_a_migration_counts_the_orders_it_failed_and_slowed(scenario_dir: Path) -> None:
    data = load_scenario_data(scenario_dir)
    migs = sm.migrations_table(data.tables["migrations"], data.tables["orders"])
    assert len(migs) == 1
    m = migs.iloc[0]
    assert m["took_s"] == 2.0
    assert m["orders_during"] == 21  # 20.0 .. 22.0 inclusive
    assert m["failed_during"] == 5
    assert m["slow_threshold_ms"] == 10.0  # the 10 s before: all at 10 ms
    assert m["slowed_during"] == 5
    moves = sm.moves_summary(data.tables["migrations"], data.tables["orders"],
                             data.schedulers).set_index("scheduler")
    assert moves.loc["kube_default", "moves"] == 0
    assert moves.loc["netmarks", ["moves", "failed", "failed_during_moves"]].tolist() == [
        1, 5, 5]


def test_inter_node_bytes_per_phase_and_their_share(scenario_dir: Path) -> None:
    data = load_scenario_data(scenario_dir)
    by = sm.bytes_table(data.tables["traffic"], data.phases, data.schedulers,
                        data.baseline).set_index(["scheduler", "phase"])
    assert by.loc[("netmarks", "chains"), "inter_node_share_pct"] == 30.0
    assert by.loc[("netmarks", "shared"), "inter_node_share_pct"] == 20.0
    assert by.loc[("netmarks", "shared"), "inter_node_saved_pct"] == 75.0
    assert by.loc[("firmament", "shared"), "inter_node_saved_pct"] == 0.0
    assert math.isnan(by.loc[("kube_default", "chains"), "inter_node_saved_pct"])


def test_scenario_only_directory_gets_its_report_tables_and_timeline(
        scenario_dir: Path) -> None:
    assert is_scenario_only(scenario_dir)
    report = build_report(scenario_dir)  # what `harness report DIR` calls
    assert report.path == scenario_dir / "report.md"
    for ext in ("png", "svg"):
        assert (scenario_dir / "figures" / f"scenario-timeline.{ext}").stat().st_size > 0
    for name in ("scenario_phases", "scenario_migrations", "scenario_recovery",
                 "scenario_bytes", "scenario_moves"):
        for ext in ("csv", "md"):
            assert (scenario_dir / "tables" / f"{name}.{ext}").stat().st_size > 0
    text = report.path.read_text()
    assert "**kube_default** (the baseline) moved 0 pods; none of its 800 orders failed." in text
    assert "**netmarks** moved 1 pod (1 by its rebalancer, 0 off drained nodes; evict)" in text
    assert "5 of its 800 orders failed, 5 of them while a move was under way" in text
    assert "- Failed orders: netmarks." in text
    assert "firmament not recovered (still drifting at the phase's end" in text
    assert "netmarks recovered after 10.5 s" in text
    assert "netmarks 20.0 % (75.0 % fewer inter-node bytes than kube_default)" in text
    assert "![scenario-timeline](figures/scenario-timeline.png)" in text


def test_report_without_figures_draws_none(scenario_dir: Path) -> None:
    report = build_scenario_report(scenario_dir, figures=False)
    assert report.figures == []
    assert not (scenario_dir / "figures").exists()
    assert report.moves.set_index("scheduler").loc["firmament", "moves"] == 0


@pytest.mark.cli
def test_harness_report_rebuilds_a_scenario_directory(scenario_dir: Path) -> None:
    # A scenario run's directory has no manifest.json and no samples/.
    result = CliRunner().invoke(app, ["report", str(scenario_dir)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (scenario_dir / "report.md").is_file()
    assert (scenario_dir / "figures" / "scenario-timeline.svg").is_file()
    rows = {line.split()[0]: line.split()[1:] for line in result.output.splitlines()
            if line.strip().startswith(("kube_default", "netmarks", "firmament"))}
    assert rows == {"kube_default": ["0", "800", "0", "0"],
                    "firmament": ["0", "800", "0", "0"],
                    "netmarks": ["1", "800", "5", "5"]}
    assert "report:" in result.output
