"""A report rebuilt from a stored results directory alone: tables, figures, report.md;
what it reads from the manifest (backend, measurement plan) and which bytes it counts."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis import tables
from analysis.report import build_report
from harness.backends.registry import describe
from harness.experiment import Experiment
from harness.testing import ModelCluster
from results.config import build_config
from results.layouts import measurement_order
from results.manifest import BackendDescription, new_manifest
from results.store import ResultsStore


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = build_config(overrides={
        "deployments": 20, "nodes": 4, "items": ["boat", "coal"], "sizes": [16, 1048576],
        "protocols": ["http"], "repetitions": 3, "layout_budget": 6, "warmup_orders": 1,
        "warmup_seconds": 0,
        "bootstrap": 200, "schedulers": ["netmarks", "random"],
    })
    root = tmp_path_factory.mktemp("results") / "run"
    store = ResultsStore.create(root, new_manifest(cfg, describe(cfg.backend)))
    backend = ModelCluster(cfg.load_economy(), cfg.nodes)
    asyncio.run(Experiment(cfg, store, backend.backend(), sweep=backend.sweep).run())
    return root


def test_report_is_rebuilt_from_the_directory_alone(results: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(results, copy)  # nothing but the files
    report = build_report(copy)
    for name in ("response_time", "inter_node_transfers", "inter_node_bytes", "layouts",
                 "scheduling_time", "headline", "reduction_by_size", "reduction_by_protocol",
                 "reduction_by_class", "item_classes", "paired_test", "beside_paper"):
        for ext in ("csv", "md", "tex"):
            assert (copy / "tables" / f"{name}.{ext}").stat().st_size > 0
    for fig in ("response_time_by_item", "response_time_vs_size", "layout_frequency",
                "traffic_heatmap"):
        assert (copy / "figures" / f"{fig}.png").stat().st_size > 0
        assert (copy / "figures" / f"{fig}.svg").stat().st_size > 0
    text = report.path.read_text()
    assert "kube_default vs netmarks vs random" in text
    assert "37 %" in text and "50 %" in text and "80 % vs 35 %" in text
    assert "| up to 60 % |" in text and "| about 20 % |" in text
    assert "not measured: this run measured http only" in text  # the gRPC row
    assert "### Paired test against kube_default" in text


def test_a_scenario_beside_the_layouts_gets_its_section(results: Path, tmp_path: Path
                                                       ) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(results, copy)
    (copy / "scenario" / "random").mkdir(parents=True)
    (copy / "scenario" / "scenario.yaml").write_text(
        "name: tiny\nphases: [{name: one, duration_s: 2, orders: {items: [boat], rate: 2}},\n"
        "  {name: two, duration_s: 2, orders: {items: [boat], rate: 2}}]\n")
    t = [0.5 * i for i in range(8)]
    pd.DataFrame({"scheduler": "random", "phase": ["one"] * 4 + ["two"] * 4, "t_s": t,
                  "item": "boat", "size": 16, "latency_ms": 5.0, "ok": True, "error": ""}
                 ).to_parquet(copy / "scenario" / "random" / "orders.parquet")
    text = build_report(copy, figures=False).path.read_text()
    assert "## Headline" in text and "## Scenario `tiny`" in text
    assert "**random** moved 0 pods; none of its 8 orders failed." in text
    assert (copy / "tables" / "scenario_phases.csv").is_file()


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
    ResultsStore.create(tmp_path / "empty", new_manifest(build_config(),
                                                         describe("local")))
    with pytest.raises(Exception, match=r"placements\.parquet is missing|no measurements"):
        build_report(tmp_path / "empty")


def _copy(results: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(results, copy)
    for built in ("tables", "figures", "report.md"):
        path = copy / built
        if path.is_dir():
            shutil.rmtree(path)
        path.unlink(missing_ok=True)
    return copy


def test_the_report_describes_the_backend_the_manifest_records(results: Path,
                                                               tmp_path: Path) -> None:
    copy = _copy(results, tmp_path)
    store = ResultsStore.open(copy)
    store.update_manifest(backend=BackendDescription(
        name="mine", places="my placer", measures="my data plane"))
    text = build_report(copy, figures=False).path.read_text()
    assert "- backend: mine — placements by my placer,\n  measured on my data plane;" in text


def test_the_report_reads_the_recorded_plan_and_derives_it_for_older_runs(
    results: Path, tmp_path: Path,
) -> None:
    copy = _copy(results, tmp_path)
    store = ResultsStore.open(copy)
    plan = store.manifest().plan
    assert plan is not None
    units = store.read_table("units")
    assert plan.layouts == measurement_order(units)
    assert {s: p.units for s, p in plan.schedulers.items()} == dict(
        units.groupby("scheduler", sort=False).size())
    done = len(store.done_chunks())
    text = build_report(copy, figures=False).path.read_text()
    assert f"- measured {done} of {plan.chunks(['http'])} planned" in text
    # The report takes the plan from the record: one more planned layout shows.
    store.update_manifest(plan=plan.model_copy(update={"layouts": [*plan.layouts, "Lnew"]}))
    text = build_report(copy, figures=False).path.read_text()
    assert f"- measured {done} of {len(plan.layouts) + 1} planned" in text
    # A run from before the record: derived from its units, as the experiment did.
    store.update_manifest(plan=None)
    text = build_report(copy, figures=False).path.read_text()
    assert f"- measured {done} of {len(plan.layouts)} planned" in text


def test_inter_node_bytes_count_producers_only_on_every_backend(results: Path) -> None:
    # The kubernetes backend's telemetry also has the in-cluster order Job's bytes
    # (workload "order-app"); the local backend's has producer-to-producer bytes only.
    run = tables.load_run(results)
    before = tables.bytes_table(run)
    tel = run.telemetry
    first = tel.iloc[0]
    order_job = pd.DataFrame([
        {**first.to_dict(), "source_workload": "order-app", "destination_workload": item,
         "src_node": "node-0", "dst_node": "node-1", "bytes": 10**9}
        for item in ("boat", "coal")
    ] + [{**first.to_dict(), "source_workload": "coal", "destination_workload": "order-app",
          "src_node": "node-1", "dst_node": "node-2", "bytes": 10**9}])
    run.telemetry = pd.concat([tel, order_job], ignore_index=True)
    after = tables.bytes_table(run)
    pd.testing.assert_frame_equal(before, after)
    # Counted, they would have dominated: the client rows are what the table leaves out.
    assert after["mean"].max() * 2**20 < 10**9


def test_node_capacity_is_stated_in_the_first_lines_and_absent_when_off(
        results: Path, tmp_path: Path) -> None:
    text = build_report(results, figures=False).path.read_text()
    assert "Node capacity" not in text   # off: the report as before
    assert "\n\n## What was run" in text
    copy = _copy(results, tmp_path)
    store = ResultsStore.open(copy)
    config = store.manifest().config.model_copy(update={"node_cpu": "2"})
    store.update_manifest(config=config, capacity={
        "enforced": False, "summary": "node capacity 2000m per node is NOT enforced on the "
                                      "pods' processes: no cgroup file system at /x"})
    head = build_report(copy, figures=False).path.read_text().splitlines()[:4]
    assert head[2] == ("> **Node capacity**: **not enforced**: node capacity 2000m per node "
                       "is NOT enforced on the pods' processes: no cgroup file system at /x")
    store.update_manifest(capacity={"enforced": True, "summary": "node capacity 2000m ..."})
    head = build_report(copy, figures=False).path.read_text().splitlines()[:4]
    assert head[2] == "> **Node capacity**: node capacity 2000m ..."
