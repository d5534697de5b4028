"""The headline in detail: item classes from the graph, reductions per size, protocol
and class with intervals, the paired test, and this run beside the paper's numbers,
on small synthetic runs whose true reductions are known."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analysis import breakdown, paired, paper, tables
from analysis.estimate import estimate_cell, estimate_group
from analysis.report_detail import detail
from harness.backends.registry import describe
from results.config import build_config
from results.manifest import new_manifest
from settlers.economy import Economy, load_economy
from settlers.picks import SHARED_SUPPLY_CHAIN, SIMPLE_CHAIN, item_class, item_classes

SIMPLE, SHARED = SIMPLE_CHAIN, SHARED_SUPPLY_CHAIN


# --- item classes ----------------------------------------------------------------------

def test_settlers_items_split_into_the_papers_simple_and_complex_items() -> None:
    classes = item_classes(load_economy())
    assert {i for i, c in classes.items() if c == SIMPLE} == {
        "water", "grain", "fish", "tree", "flour", "log", "board", "boat"}
    for item in ("bread", "coal", "sword", "tools", "iron", "coin", "pig", "meat"):
        assert classes[item] == SHARED, item


def test_classes_of_a_made_up_economy_follow_its_graph() -> None:
    eco = Economy.from_mapping({"name": "workshop", "items": {
        "ore": {}, "sand": {}, "glass": {"inputs": {"sand": 1}},
        "lens": {"inputs": {"glass": 2}}, "metal": {"inputs": {"ore": 1}},
        "frame": {"inputs": {"metal": 1}},
        "scope": {"inputs": {"lens": 1, "frame": 1, "metal": 1}},  # metal: two paths
        "kit": {"inputs": {"scope": 1}},  # one input, but its closure branches
        "pair": {"inputs": {"sand": 1, "ore": 1}},  # branches, nothing shared
    }})
    assert item_classes(eco) == {
        "ore": SIMPLE, "sand": SIMPLE, "glass": SIMPLE, "lens": SIMPLE, "metal": SIMPLE,
        "frame": SIMPLE, "scope": SHARED, "kit": SHARED, "pair": SHARED}
    assert item_class(eco, "kit") == SHARED
    assert item_classes(eco, ["lens", "kit"]) == {"lens": SIMPLE, "kit": SHARED}


# --- a synthetic run -------------------------------------------------------------------

# The true factors (scheduler's mean / baseline's) per item: flour (a simple chain) 60 %
# faster, bread (a shared supply chain) 20 %.
FACTOR = {"flour": 0.4, "bread": 0.8}
BASE_MS = {16: 10.0, 1048576: 100.0}
PROTO_MS = {"http": 1.0, "grpc": 0.5}


def synthetic_run(tmp_path: Path, *, protocols: tuple[str, ...] = ("http", "grpc"),
                  factor: dict[str, float] | None = None,
                  economy: str | None = None) -> tables.RunData:
    """Two baseline layouts, two netmarks layouts; 4 orders per cell and layout."""
    factor = FACTOR if factor is None else factor
    overrides: dict[str, Any] = {
        "items": ["flour", "bread"], "sizes": list(BASE_MS), "protocols": list(protocols),
        "schedulers": ["netmarks"], "bootstrap": 300, "deployments": 4}
    if economy is not None:
        overrides["economy"] = economy
    cfg = build_config(overrides=overrides)
    manifest = new_manifest(cfg, describe("local"))
    rng = np.random.default_rng(7)
    units = pd.DataFrame({
        "scheduler": ["kube_default"] * 2 + ["netmarks"] * 2,
        "layout_id": ["B1", "B2", "N1", "N2"], "estimator": "census"})
    rows = []
    for lid, scheduler in zip(units["layout_id"], units["scheduler"], strict=True):
        for item in factor:
            for size, ms in BASE_MS.items():
                for protocol in protocols:
                    f = factor[item] if scheduler == "netmarks" else 1.0
                    for _ in range(4):
                        latency = ms * PROTO_MS[protocol] * f * rng.normal(1.0, 0.02)
                        hops = 1 if item == "flour" else 3
                        crossed = 0 if scheduler == "netmarks" else hops
                        rows.append({"layout_id": lid, "item": item, "size": size,
                                     "protocol": protocol, "latency_ms": latency, "ok": True,
                                     "transfers": hops, "inter_node_transfers": crossed})
    placements = pd.DataFrame({
        "scheduler": ["kube_default"] * 4 + ["netmarks"] * 4,
        "layout_id": ["B1", "B2", "B1", "B3", "N1", "N2", "N1", "N1"], "seconds": 0.01})
    return tables.RunData(
        root=tmp_path, manifest=manifest, placements=placements, layouts=pd.DataFrame(),
        units=units, samples=pd.DataFrame(rows), telemetry=pd.DataFrame(),
        traffic=pd.DataFrame())


def _row(frame: pd.DataFrame, scheduler: str = "netmarks", **keys: Any) -> pd.Series:
    for col, value in keys.items():
        frame = frame[frame[col] == value]
    (row,) = [r for _, r in frame[frame["scheduler"] == scheduler].iterrows()]
    return row


def _covers(row: pd.Series, truth: float, col: str = "reduction") -> bool:
    low, high = row[f"{col}_ci_low_pct"], row[f"{col}_ci_high_pct"]
    return bool(low <= truth <= high and high - low < 10)


def test_group_estimate_is_the_mean_of_the_cells_estimates() -> None:
    rng = np.random.default_rng(3)
    units = {"base": ["A", "B", "B"], "new": ["C", "C", "D"]}
    cells = [{lid: list(rng.normal(m, 1, 5)) for lid, m in zip("ABCD", ms, strict=True)}
             for ms in ((10, 20, 5, 6), (40, 50, 30, 20))]
    single = [{e.scheduler: e for e in estimate_cell(c, units, baseline="base")}
              for c in cells]
    group = {e.scheduler: e for e in estimate_group(cells, units, baseline="base")}
    for s in units:
        assert group[s].mean == pytest.approx(np.mean([c[s].mean for c in single]))
        assert group[s].low <= group[s].mean <= group[s].high
    assert group["new"].reduction == pytest.approx(
        np.mean([c["new"].reduction for c in single]))
    assert group["new"].reduction_low <= group["new"].reduction <= group["new"].reduction_high
    assert group["base"].reduction == 0.0
    # One cell: the cell's own estimate.
    (one,) = [e for e in estimate_group(cells[:1], units, baseline="base") if e.scheduler
              == "new"]
    assert one.mean == pytest.approx(single[0]["new"].mean)
    assert one.reduction == pytest.approx(single[0]["new"].reduction)


def test_group_estimate_with_missing_cells_and_layouts() -> None:
    units = {"base": ["A", "B"], "new": ["C", "Z"], "none": ["Y"]}
    cells = [{"A": [10.0], "B": [10.0], "C": [5.0]},  # Z never measured
             {"A": [20.0], "B": [20.0]}]  # "new" has no data in this cell
    est = {e.scheduler: e for e in estimate_group(cells, units, baseline="base", seed=2)}
    assert est["new"].mean == 5.0 and est["new"].reduction == pytest.approx(0.5)
    assert est["new"].units == 1 and est["new"].coverage == pytest.approx(0.25)
    assert est["base"].coverage == 1.0 and est["base"].mean == 15.0
    assert math.isnan(est["none"].mean) and math.isnan(est["none"].reduction)
    assert est["none"].units == 0


def test_reductions_per_size_protocol_and_class_recover_the_truth(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path)
    rt = tables.response_time_table(run)
    sizes = breakdown.reduction_by_size(run, rt)
    assert list(sizes["size"].unique()) == [16, 1048576]
    for size in BASE_MS:
        row = _row(sizes, size=size)
        assert row["cells"] == 4  # 2 items x 2 protocols
        assert row["reduction_pct"] == pytest.approx(40, abs=2)  # mean of 60 and 20
        assert _covers(row, 40)
        assert row["best_reduction_pct"] == pytest.approx(60, abs=2)
        assert row["best_cell"].startswith("flour, ")
        assert row["best_ci_low_pct"] <= row["best_reduction_pct"] <= row["best_ci_high_pct"]
        base = _row(sizes, "kube_default", size=size)
        assert base["reduction_pct"] == 0 and math.isnan(base["best_reduction_pct"])
    protos = breakdown.reduction_by_protocol(run, rt)
    assert set(protos["protocol"]) == {"http", "grpc"}
    assert _covers(_row(protos, protocol="grpc"), 40)
    assert _row(protos, protocol="grpc")["mean"] == pytest.approx(
        _row(protos, protocol="http")["mean"] / 2, rel=0.05)
    by_class = breakdown.reduction_by_class(run, rt)
    assert list(dict.fromkeys(by_class["item_class"])) == [SIMPLE, SHARED]
    assert list(dict.fromkeys(by_class["protocol"])) == ["http", "grpc", "all"]
    for protocol in ("http", "grpc", "all"):
        assert _covers(_row(by_class, item_class=SIMPLE, protocol=protocol), 60)
        assert _covers(_row(by_class, item_class=SHARED, protocol=protocol), 20)
    assert _row(by_class, item_class=SHARED, protocol="all")["cells"] == 4
    overall = breakdown.reduction_overall(run, rt)
    assert _row(overall, group="all")["reduction_pct"] == pytest.approx(40, abs=2)
    transfers = {e.scheduler: e for e in breakdown.transfer_share_overall(run)}
    assert transfers["kube_default"].mean == pytest.approx(100)
    assert transfers["netmarks"].mean == pytest.approx(0)


def test_one_protocol_has_no_all_rows_and_a_gone_economy_no_classes(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path, protocols=("http",))
    rt = tables.response_time_table(run)
    assert set(breakdown.reduction_by_class(run, rt)["protocol"]) == {"http"}
    eco = tmp_path / "eco.yaml"
    eco.write_text(load_economy().to_yaml())
    gone = synthetic_run(tmp_path, economy=str(eco))
    eco.unlink()
    assert breakdown.item_classes(gone) is None
    assert breakdown.reduction_by_class(gone, rt).empty
    assert breakdown.item_class_table(gone).empty


# --- the paired test -------------------------------------------------------------------

def _rt(factors: list[float]) -> pd.DataFrame:
    """A response-time table: 8 cells, the scheduler's mean = baseline's x factor."""
    cells = [(item, size, protocol) for item in ("flour", "bread")
             for size in (16, 1024) for protocol in ("http", "grpc")]
    rows = []
    for (item, size, protocol), f in zip(cells, factors, strict=True):
        base = 10.0 + size / 100 + (5 if item == "bread" else 0)
        for scheduler, mean in (("kube_default", base), ("netmarks", base * f)):
            rows.append({"item": item, "size": size, "protocol": protocol,
                         "scheduler": scheduler, "mean": mean})
    return pd.DataFrame(rows)


def test_a_clearly_faster_scheduler_gets_a_small_p() -> None:
    rt = _rt([0.5, 0.6, 0.7, 0.55, 0.8, 0.75, 0.9, 0.65])
    row = paired.paired_tests(rt, "kube_default").to_dict("records")[0]
    assert row["cells"] == "all cells" and row["pairs"] == 8 and row["faster"] == 8
    assert row["p_value"] == pytest.approx(2 / 2**8)  # exact: every sign agrees
    assert row["p_value"] < 0.01 and row["verdict"] == "faster"
    assert 0 < row["median_reduction_pct"] < 50


def test_identical_means_give_p_one_and_no_difference() -> None:
    row = paired.paired_tests(_rt([1.0] * 8), "kube_default").to_dict("records")[0]
    assert row["p_value"] == 1.0 and row["ties"] == 8
    assert row["verdict"] == "no difference (identical means)"
    assert row["median_reduction_pct"] == 0


def test_noise_is_no_clear_difference_and_few_pairs_say_so() -> None:
    row = paired.paired_tests(_rt([0.9, 1.1, 0.95, 1.05, 1.02, 0.98, 0.97, 1.03]),
                              "kube_default").to_dict("records")[0]
    assert row["p_value"] > 0.5 and row["verdict"] == "no clear difference"
    few = paired.signed_rank(np.log([0.5, 0.5, 0.5]))
    assert few["pairs"] == 3 and few["verdict"].startswith("too few pairs to tell (3; 6 ")


def test_paired_rows_per_protocol_and_class() -> None:
    rt = _rt([0.5, 0.6, 0.7, 0.55, 0.8, 0.75, 0.9, 0.65])
    tests = paired.paired_tests(rt, "kube_default",
                                classes={"flour": SIMPLE, "bread": SHARED})
    assert list(tests["cells"]) == ["all cells", "http", "grpc", SIMPLE, SHARED]
    assert list(tests["pairs"]) == [8, 4, 4, 4, 4]


# --- this run beside the paper ---------------------------------------------------------

def _beside(run: tables.RunData) -> pd.DataFrame:
    rt = tables.response_time_table(run)
    return paper.beside_paper(
        baseline=run.baseline, schedulers=run.schedulers, protocols=run.config.protocols,
        classes=breakdown.item_classes(run), rt=rt,
        overall=breakdown.reduction_overall(run, rt),
        by_class=breakdown.reduction_by_class(run, rt),
        transfers=breakdown.transfer_share_overall(run), by=tables.bytes_table(run),
        lay=tables.layouts_table(run))


def test_each_paper_number_sits_beside_the_matching_figure(tmp_path: Path) -> None:
    long = _beside(synthetic_run(tmp_path)).set_index(["claim", "kind"])
    up_to = long.loc[("response time reduction, overall", "up to")]
    assert up_to["paper"] == "up to 37 %" and up_to["value"] == pytest.approx(60, abs=2)
    assert up_to["where"].startswith("flour, ")
    mean = long.loc[("response time reduction, overall", "mean")]
    assert mean["value"] == pytest.approx(40, abs=2) and mean["where"] == "8 cells"
    http = long.loc[("response time reduction, simple chains, http", "up to")]
    assert http["paper"] == "up to 60 %" and http["value"] == pytest.approx(60, abs=2)
    assert http["where"].startswith("flour, ") and http["where"].endswith(", http")
    grpc = long.loc[("response time reduction, simple chains, grpc", "up to")]
    assert grpc["paper"] == "up to 40 %" and grpc["where"].endswith(", grpc")
    complex_ = long.loc[("response time reduction, shared supply chains", "mean")]
    assert complex_["paper"] == "about 20 %"
    assert complex_["ci_low"] <= 20 <= complex_["ci_high"]
    hops = long.loc[("inter-node transfers, kube_default vs scheduler", "mean")]
    assert hops["paper"] == "80 % vs 35 %"
    assert (hops["baseline_value"], hops["value"]) == pytest.approx((100, 0))
    assert long.loc[("inter-node bytes saved", "up to")]["status"].startswith(
        "not measured: no mesh telemetry")
    lay = long.loc[("distinct layouts of the redeployments", "count")]
    assert lay["paper"] == "about 120 of 1000"
    assert lay["where"] == ("kube_default: 3 of 4 (2 measured); "
                            "netmarks: 2 of 4 (2 measured)")
    wide = paper.pretty_beside_paper(long.reset_index())
    assert list(wide.columns) == ["claim", "kind", "paper (NetMARKS vs default)",
                                  "this run: compared with", "netmarks vs kube_default"]
    assert set(wide["kind"]) == {"UP TO", "MEAN", "COUNT"}
    hops_text = wide.set_index("claim").loc["inter-node transfers, kube_default vs scheduler",
                                            "netmarks vs kube_default"]
    assert hops_text == "100.0 [100.0, 100.0] % vs 0.0 [0.0, 0.0] %"


def test_what_the_run_lacks_is_not_measured(tmp_path: Path) -> None:
    long = _beside(synthetic_run(tmp_path, protocols=("http",))).set_index("claim")
    assert long.loc["response time reduction, simple chains, grpc", "status"] == (
        "not measured: this run measured http only")
    assert long.loc["response time reduction, simple chains, http", "status"] == "measured"
    only_bread = synthetic_run(tmp_path, factor={"bread": 0.8})
    only_bread.manifest = only_bread.manifest.model_copy(update={"items": ["bread"]})
    long = _beside(only_bread).set_index("claim")
    assert long.loc["response time reduction, simple chains, http", "status"] == (
        "not measured: no simple chain item ordered")


def test_the_detail_tables_are_written_and_open_in_pandas(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path)
    rt = tables.response_time_table(run)
    out = tmp_path / "tables"
    more = detail(run, rt, tables.bytes_table(run), tables.layouts_table(run), out)
    for name in ("reduction_by_size", "reduction_by_protocol", "reduction_by_class",
                 "item_classes", "paired_test", "beside_paper"):
        frame = pd.read_csv(out / f"{name}.csv")
        assert not frame.empty, name
        assert (out / f"{name}.md").exists() and (out / f"{name}.tex").exists()
    assert pd.read_csv(out / "paired_test.csv")["p_value"].iloc[0] < 0.01
    assert "What is paired: each of the 8 cells (item x size x protocol)" in more.section
    assert "| up to 37 % |" in more.beside_paper and "netmarks: best cell (%)" in more.section
