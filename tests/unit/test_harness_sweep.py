"""`harness sweep` without processes: factors and their validation, the grid, resume, and
the sweep's tables, figures and report from points measured on the model backend."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.experiment import Experiment
from harness.sweep import expand_grid, new_sweep, plan_points, point_state, run_sweep
from harness.testing import ModelCluster
from results import provenance
from results.config import ConfigError, ExperimentConfig
from results.store import ResultsStore
from results.sweep import (
    parse_factor,
    parse_level,
    read_sweep_file,
    read_sweep_manifest,
)

BASE: dict[str, Any] = {
    "deployments": 6, "nodes": 3, "items": ["flour", "sword"], "sizes": [16, 65536],
    "protocols": ["http"], "repetitions": 2, "layout_budget": 4, "warmup_orders": 1,
    "warmup_seconds": 0, "bootstrap": 100,
}
GRID = {"link": ["lan", "wan"], "order": ["file", "random"]}


class Killed(BaseException):
    """Like KeyboardInterrupt: stops the sweep mid-point."""


def _model_run(cfg: ExperimentConfig, store: ResultsStore, backend: ModelCluster | None = None,
               sweep: Any = None) -> None:
    backend = backend or ModelCluster(cfg.load_economy(), cfg.nodes)
    asyncio.run(Experiment(cfg, store, backend.backend(), sweep=sweep or backend.sweep).run())
    store.update_manifest(finished_at=provenance.now())


def _new(root: Path, grid: dict[str, list[Any]] | None = None) -> None:
    grid = grid or GRID
    points = plan_points(grid, settings=BASE)
    new_sweep(root, command="harness sweep (test)", factors=grid, base={"settings": BASE},
              points=points)


# -- factors and levels ---------------------------------------------------------------

def test_factor_levels_take_the_settings_type() -> None:
    assert parse_factor("link=lan,edge,wan") == ("link", ["lan", "edge", "wan"])
    assert parse_factor("nodes=3, 5") == ("nodes", [3, 5])
    assert parse_factor("cpu-scale=0.5,1") == ("cpu_scale", [0.5, 1.0])
    assert parse_factor("sizes=16+1048576,65536") == ("sizes", [[16, 1048576], [65536]])
    assert parse_factor("node_cpu=none,2") == ("node_cpu", [None, "2"])
    assert parse_factor("items=all,boat+coal") == ("items", ["all", ["boat", "coal"]])
    assert parse_level("load_in_traffic", "yes") is True
    assert parse_factor("netmarks.weight=1,4") == ("netmarks.weight", [1, 4])


def test_a_policy_option_factor_joins_scheduler_options() -> None:
    points = plan_points({"netmarks.weight": [1, 4]}, settings={
        **BASE, "schedulers": ["netmarks", "firmament"],
        "scheduler_options": {"firmament": {"rounds": 3}}})
    assert [p.name for p in points] == ["0-netmarks.weight=1", "1-netmarks.weight=4"]
    assert points[1].config["scheduler_options"] == {"firmament": {"rounds": 3},
                                                     "netmarks": {"weight": 4}}
    with pytest.raises(ConfigError, match=r"(?s)--factor firmament.rounds=2: .*not among"):
        plan_points({"firmament.rounds": [2]}, settings=BASE)


@pytest.mark.parametrize(("text", "words"), [
    ("linkk=lan", ["unknown setting 'linkk'", "link"]),
    ("nodes=three", ["nodes=three", "not a whole number"]),
    ("order=sideways", ["order=sideways", "not one of"]),
    ("link", ["SETTING=LEVEL"]),
    ("link=lan,lan", ["given twice"]),
    ("external_schedulers=x", ["unknown setting"]),
    ("netmarks.wait=1", ["netmarks has no option 'wait'"]),
    ("nosuch.weight=1", ["unknown scheduler 'nosuch'"]),
])
def test_a_bad_factor_is_named(text: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_factor(text)
    for word in words:
        assert word in str(info.value)


def test_a_level_the_config_rejects_is_named_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"(?s)--factor link=moon: .*unknown link preset"):
        plan_points({"link": ["lan", "moon"]}, settings=BASE)
    with pytest.raises(ConfigError, match=r"(?s)--factor nodes=0: .*nodes"):
        plan_points({"nodes": [0, 3]}, settings=BASE)


def test_replicated_points_are_refused_with_the_way_out() -> None:
    with pytest.raises(ConfigError, match=r"replicates 3: a sweep point is one run.*seed"):
        plan_points({"link": ["lan"]}, settings={**BASE, "replicates": 3})


def test_the_grid_is_every_combination_first_factor_slowest() -> None:
    assert expand_grid(GRID) == [
        {"link": "lan", "order": "file"}, {"link": "lan", "order": "random"},
        {"link": "wan", "order": "file"}, {"link": "wan", "order": "random"}]
    points = plan_points(GRID, settings=BASE)
    assert [p.name for p in points] == ["0-link=lan,order=file", "1-link=lan,order=random",
                                        "2-link=wan,order=file", "3-link=wan,order=random"]
    assert points[3].config["link"] == "wan" and points[3].config["order"] == "random"
    assert all(p.config["deployments"] == 6 for p in points)


def test_sweep_file_is_validated(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("base: {deployments: 5}\nfactors: {link: [lan, wan], sizes: [16, 65536]}\n")
    spec = read_sweep_file(good)
    assert spec.base == {"deployments": 5}
    assert spec.factors == {"link": ["lan", "wan"], "sizes": [[16], [65536]]}
    for text, word in [("base: {}\nfactor: {link: [lan]}\n", "factor"),
                       ("factors: {colour: [red]}\n", "colour"),
                       ("factors: {link: []}\n", "at least one level"),
                       ("- just a list\n", "mapping")]:
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(ConfigError, match=word):
            read_sweep_file(bad)


# -- running and resuming -------------------------------------------------------------

def test_an_interrupted_sweep_resumes_without_loss_or_duplicates(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    _new(root)
    calls: list[str] = []
    kill = {"armed": True}

    def killed_in_point_1(cfg: ExperimentConfig, store: ResultsStore) -> None:
        calls.append(store.root.name)
        if store.root.name.startswith("1-") and kill["armed"]:
            backend = ModelCluster(cfg.load_economy(), cfg.nodes)
            n = {"sweeps": 0}

            async def flaky(*args: Any, **kwargs: Any) -> pd.DataFrame:
                n["sweeps"] += 1
                if n["sweeps"] == 3:  # warm-up and a chunk, then the "kill"
                    kill["armed"] = False
                    raise Killed
                return await backend.sweep(*args, **kwargs)

            _model_run(cfg, store, backend, sweep=flaky)
        else:
            _model_run(cfg, store)

    with pytest.raises(Killed):
        run_sweep(root, killed_in_point_1)
    manifest = read_sweep_manifest(root)
    states = [point_state(manifest.point_dir(root, p)) for p in manifest.points]
    assert states == ["finished", "started", "new", "new"]
    first = (manifest.point_dir(root, manifest.points[0]) / "manifest.json").read_bytes()
    chunk = sorted((manifest.point_dir(root, manifest.points[1]) / "samples").glob("*"))
    assert len(chunk) == 1
    measured_before = chunk[0].stat().st_mtime_ns

    seen: list[tuple[int, str]] = []
    calls.clear()
    done = run_sweep(root, killed_in_point_1, notify=lambda i, n, p, s: seen.append((i, s)))
    assert seen == [(0, "finished"), (1, "started"), (2, "new"), (3, "new")]
    assert calls == [p.name for p in manifest.points[1:]]  # point 0 not run again
    assert (manifest.point_dir(root, manifest.points[0]) / "manifest.json").read_bytes() == first
    assert done.finished_at and len(done.resumed_at) == 1
    resumed = ResultsStore.open(manifest.point_dir(root, manifest.points[1]))
    samples = resumed.samples()
    assert not samples.duplicated(["layout_id", "protocol", "item", "size", "repeat"]).any()
    assert chunk[0].stat().st_mtime_ns == measured_before  # the measured chunk kept
    # Each point ran with its own settings.
    for point in done.points:
        cfg = ResultsStore.open(done.point_dir(root, point)).manifest().config
        assert (cfg.link, cfg.order) == (point.values["link"], point.values["order"])
    # Nothing left to do: a third call runs nothing.
    calls.clear()
    run_sweep(root, killed_in_point_1)
    assert calls == []


def test_a_new_sweep_needs_an_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("")
    with pytest.raises(ConfigError, match="not empty"):
        _new(tmp_path / "x")


# -- the sweep's report ---------------------------------------------------------------

@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweep") / "s"
    _new(root, {"link": ["lan", "wan"], "seed": [1, 2]})
    run_sweep(root, _model_run)
    return root


def test_the_sweep_table_has_a_row_per_point_scheduler_and_metric(measured: Path) -> None:
    from analysis.sweep import build_sweep_report

    report = build_sweep_report(measured)
    table = pd.read_parquet(measured / "tables" / "sweep.parquet")
    assert list(table.columns) == ["point", "link", "seed", "scheduler", "metric", "mean",
                                   "low", "high", "finished"]
    assert table["point"].nunique() == 4 and report.missing == []
    per_point = table.groupby("point").size()
    # Two metrics for both schedulers... and the three others for both too, minus the
    # baseline's two comparisons with itself.
    assert set(per_point) == {2 * 5 - 2}
    assert set(table["metric"]) == {"rt_reduction_largest_pct", "mean_rt_largest_ms",
                                    "inter_node_transfers_pct", "inter_node_bytes_saved_pct",
                                    "distinct_layouts"}
    bounded = table[table["metric"] != "distinct_layouts"]
    assert (bounded["low"] <= bounded["mean"] + 1e-9).all()
    assert (bounded["mean"] <= bounded["high"] + 1e-9).all()
    for metric in set(table["metric"]):
        assert (measured / "tables" / f"sweep_{metric}.md").is_file()
        assert (measured / "figures" / f"sweep_{metric}.png").is_file()
    nested = json.loads((measured / "tables" / "sweep.json").read_text())
    row = table[(table["point"] == "3-link=wan,seed=2") & (table["scheduler"] == "netmarks")
                & (table["metric"] == "inter_node_transfers_pct")].iloc[0]
    assert nested["inter_node_transfers_pct"]["link=wan, seed=2"]["netmarks"]["mean"] == (
        pytest.approx(row["mean"]))
    assert nested["distinct_layouts"]["link=lan, seed=1"]["kube_default"]["low"] is None
    text = report.path.read_text()
    assert "`link`: lan, wan" in text and "`seed`: 1, 2" in text
    assert "| link=lan, seed=1 |" in text
    assert "- **link**, netmarks:" in text and "- **seed**, kube_default:" in text


def test_factor_effects_range_and_overlap() -> None:
    from analysis.sweep import factor_effects

    rows = [("lan", "file", 10.0, 8.0, 12.0), ("wan", "file", 30.0, 25.0, 35.0),
            ("lan", "random", 10.0, 5.0, 15.0), ("wan", "random", 12.0, 9.0, 14.0)]
    table = pd.DataFrame([{"point": f"{link},{order}", "link": link, "order": order,
                           "scheduler": "netmarks", "metric": "rt_reduction_largest_pct",
                           "mean": m, "low": lo, "high": hi, "finished": True}
                          for link, order, m, lo, hi in rows])
    effects = factor_effects(table, ["link", "order"])
    by_link = effects[effects["factor"] == "link"].set_index("at")
    assert by_link.loc["order=file", "range"] == pytest.approx(20.0)
    assert not by_link.loc["order=file", "intervals_overlap"]
    assert by_link.loc["order=random", "intervals_overlap"]
    assert by_link.loc["order=random", "highest_level"] == "wan"
    by_order = effects[effects["factor"] == "order"].set_index("at")
    assert by_order.loc["link=lan", "range"] == pytest.approx(0.0)


def test_harness_report_rebuilds_a_sweep_directory(measured: Path) -> None:
    (measured / "report.md").unlink(missing_ok=True)
    result = CliRunner().invoke(app, ["report", str(measured)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (measured / "report.md").is_file()
    assert "sweep report" in result.output


# -- the command line -----------------------------------------------------------------

@pytest.mark.parametrize(("args", "words"), [
    (["--factor", "link=lan,moon"], ["--factor link=moon", "unknown link preset"]),
    (["--factor", "colour=red"], ["unknown setting 'colour'"]),
    ([], ["at least one --factor"]),
    (["--factor", "link=lan", "--link", "wan"], ["link is both a factor and a flag"]),
])
def test_the_command_rejects_a_bad_sweep_before_anything_runs(
        tmp_path: Path, args: list[str], words: list[str]) -> None:
    out = tmp_path / "sweep"
    result = CliRunner().invoke(app, ["sweep", "--quick", *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    for word in words:
        assert word in text
    assert not out.exists()


def test_resume_takes_no_other_settings(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["sweep", "--resume", str(tmp_path), "--factor",
                                      "link=lan"])
    assert result.exit_code == 2
    assert "drop --factor" in " ".join(result.output.split())


def test_sweep_json_records_factors_base_and_points(tmp_path: Path) -> None:
    _new(tmp_path / "s")
    data = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert data["factors"] == GRID
    assert data["base"]["settings"]["deployments"] == 6
    assert [p["values"] for p in data["points"]] == expand_grid(GRID)
    assert not math.isnan(data["points"][0]["config"]["confidence"])


def test_the_command_runs_every_point_then_the_sweep_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.sweep_cmd as cmd

    ran: list[str] = []

    def fake_run(cfg: ExperimentConfig, store: ResultsStore, **_: Any) -> None:
        ran.append(store.root.name)
        _model_run(cfg, store)

    monkeypatch.setattr(cmd, "run_experiment", fake_run)
    monkeypatch.setattr(cmd, "print_report", lambda root, console: None)
    out = tmp_path / "s"
    args = ["sweep", "--factor", "order=file,random", "--deployments", "6", "--nodes", "3",
            "--items", "flour,sword", "--sizes", "16,65536", "--protocol", "http",
            "--repetitions", "2", "--layout-budget", "3", "--warmup-seconds", "0",
            "--scheduler-option", "netmarks.weight=2", "--out", str(out)]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert ran == ["0-order=file", "1-order=random"]
    text = " ".join(result.output.split())
    assert "point 1/2: 0-order=file (running)" in text and "sweep report:" in text
    manifest = read_sweep_manifest(out)
    assert manifest.command.startswith("harness sweep --deployments 6")
    assert "--scheduler-option netmarks.weight=2" in manifest.command
    assert "--factor order=file,random" in manifest.command
    assert manifest.points[0].config["scheduler_options"] == {"netmarks": {"weight": 2}}
    assert (out / "report.md").is_file() and (out / "tables" / "sweep.csv").is_file()

    again = CliRunner().invoke(app, ["sweep", "--resume", str(out)], catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert ran == ["0-order=file", "1-order=random"]  # nothing run twice
    assert "already finished, kept" in again.output


def test_dry_run_lists_the_points_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "s"
    result = CliRunner().invoke(app, ["sweep", "--quick", "--factor", "link=lan,wan",
                                      "--factor", "netmarks.weight=1,3", "--dry-run",
                                      "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "4 points, every one valid" in result.output
    assert "points/3-link=wan,netmarks.weight=3" in result.output
    assert not out.exists()
