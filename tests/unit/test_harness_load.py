"""--load over the model backend (no processes): config, chunks, resume, warm-up, report."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.backends.registry import describe
from harness.experiment import Experiment
from harness.testing import ModelCluster
from results.config import ConfigError, ExperimentConfig, build_config
from results.manifest import new_manifest
from results.store import ResultsStore, chunk_name


class Killed(BaseException):
    """Like KeyboardInterrupt: not an error the experiment retries."""


def _config(**overrides: Any) -> ExperimentConfig:
    base: dict[str, Any] = {
        "deployments": 6, "nodes": 3, "items": ["flour", "bread", "sword"],
        "sizes": [16, 65536], "protocols": ["http"], "repetitions": 2,
        "layout_budget": 100, "warmup_orders": 1, "warmup_seconds": 0, "bootstrap": 200,
        "load": [0, 40],
    }
    base.update(overrides)
    return build_config(overrides=base)


def _run(cfg: ExperimentConfig, store: ResultsStore, backend: ModelCluster,
         sweep: Any = None) -> None:
    asyncio.run(Experiment(cfg, store, backend.backend(), sweep=sweep or backend.sweep,
                           load=backend.background_load, load_ramp_s=0.0).run())


def _new(cfg: ExperimentConfig, tmp_path: Path) -> ResultsStore:
    return ResultsStore.create(tmp_path / "run", new_manifest(cfg, describe(cfg.backend)))


# ---------------------------------------------------------------- config and names

def test_loads_are_sorted_unique_rates_and_default_to_none() -> None:
    assert build_config().load == [] and build_config().load_in_traffic is False
    assert build_config(overrides={"load": [40, 0, 40.0, 2.5]}).load == [0, 2.5, 40]


@pytest.mark.parametrize(("load", "message"), [
    ([-5], "load -5 must be between 0 and 10000"),
    (["20"], "load '20' is not a number of orders per second"),
    ([True], "load True is not a number"),
    ([float("nan")], "load nan must be between 0"),
    (20, "must be a list of rates"),
])
def test_bad_loads_fail_with_the_value_named(load: object, message: str) -> None:
    with pytest.raises(ConfigError, match="load") as err:
        build_config(overrides={"load": load})
    assert message in str(err.value)


def test_load_is_refused_where_it_cannot_run() -> None:
    with pytest.raises(ConfigError, match="kubernetes backend"):
        build_config(overrides={"load": [10], "backend": "kubernetes"})
    with pytest.raises(ConfigError, match="no load above 0"):
        build_config(overrides={"load": [0], "load_in_traffic": True})


def test_a_stored_config_without_load_reads_as_none() -> None:
    stored = build_config().model_dump(mode="json")
    del stored["load"], stored["load_in_traffic"]
    assert ExperimentConfig.recorded(stored).load == []


def test_chunk_names_keep_the_old_form_without_load() -> None:
    assert chunk_name("Labc", "http") == "Labc-http"
    assert chunk_name("Labc", "http", 0.0) == "Labc-http-load0"
    assert chunk_name("Labc", "grpc", 20.0) == "Labc-grpc-load20"
    assert chunk_name("Labc", "grpc", 2.5) == "Labc-grpc-load2.5"
    assert chunk_name("Labc", "grpc", 0.125) == "Labc-grpc-load0.125"


# ---------------------------------------------------------------- the experiment

def test_every_layout_is_measured_at_every_load(tmp_path: Path) -> None:
    cfg = _config()
    store = _new(cfg, tmp_path)
    backend = ModelCluster(cfg.load_economy(), cfg.nodes, noise_ms=0.0)
    _run(cfg, store, backend)

    measured = list(store.manifest().plan.layouts)  # type: ignore[union-attr]
    assert store.done_chunks() == {chunk_name(lid, "http", x) for lid in measured
                                   for x in (0.0, 40.0)}
    assert backend.loads_run == [0.0, 40.0] * len(measured)  # the warm-up ran none
    samples = store.samples()
    assert set(samples["load_rps"]) == {0.0, 40.0}
    assert not samples.duplicated(["layout_id", "protocol", "load_rps", "item", "size",
                                   "repeat"]).any()
    by_load = samples.groupby("load_rps")["load_achieved_rps"].unique()
    assert list(by_load[0.0]) == [0.0] and list(by_load[40.0]) == [40.0]
    # The model slows every order down under load.
    means = samples.groupby("load_rps")["latency_ms"].mean()
    assert means[40.0] > means[0.0]
    background = store.background_load()
    assert len(background) == 2 * len(measured)
    assert set(background.columns) >= {"layout_id", "protocol", "load_rps", "offered_rps",
                                       "achieved_rps", "p50_ms", "p99_ms", "dropped"}
    assert set(store.read_table("telemetry")["load_rps"]) == {0.0, 40.0}


def test_a_run_without_load_writes_what_it_always_did(tmp_path: Path) -> None:
    cfg = _config(load=[])
    store = _new(cfg, tmp_path)
    backend = ModelCluster(cfg.load_economy(), cfg.nodes)
    _run(cfg, store, backend)
    assert all("load" not in name for name in store.done_chunks())
    assert "load_rps" not in store.samples() and not (store.root / "load").exists()
    assert backend.loads_run == []


def test_load_in_traffic_runs_the_largest_load_during_the_warm_up(tmp_path: Path) -> None:
    cfg = _config(load=[0, 10, 40], load_in_traffic=True)
    store = _new(cfg, tmp_path)
    backend = ModelCluster(cfg.load_economy(), cfg.nodes)
    _run(cfg, store, backend)
    assert backend.loads_run[0] == 40.0  # the warm-up, before any layout
    assert len(backend.loads_run) == 1 + 3 * len(store.manifest().plan.layouts)  # type: ignore[union-attr]


def test_an_interrupted_run_with_loads_resumes_without_loss_or_duplicates(
    tmp_path: Path,
) -> None:
    cfg = _config(protocols=["http", "grpc"])
    store = _new(cfg, tmp_path)
    backend = ModelCluster(cfg.load_economy(), cfg.nodes)
    calls = {"n": 0}

    async def flaky(*args: Any, **kwargs: Any) -> pd.DataFrame:
        calls["n"] += 1
        if calls["n"] == 5:  # warm-up + 3 chunks, then the "kill" (mid-layout: load 40)
            raise Killed
        return await backend.sweep(*args, **kwargs)

    with pytest.raises(Killed):
        _run(cfg, store, backend, sweep=flaky)
    assert backend.load_rps == 0  # the background load was stopped with the run
    first = {p.name: p.stat().st_mtime_ns for p in (store.root / "samples").glob("*.parquet")}
    assert len(first) == 3
    assert sorted(first)[0].endswith("-http-load0.parquet")

    resumed = ModelCluster(cfg.load_economy(), cfg.nodes)
    _run(cfg, ResultsStore.open(store.root), resumed)
    after = {p.name: p.stat().st_mtime_ns for p in (store.root / "samples").glob("*.parquet")}
    assert all(after[name] == mtime for name, mtime in first.items())  # not redone
    layouts = store.manifest().plan.layouts  # type: ignore[union-attr]
    assert set(after) == {f"{chunk_name(lid, p, x)}.parquet" for lid in layouts
                          for p in cfg.protocols for x in cfg.load}
    assert len(resumed.loads_run) == len(after) - len(first)  # only the missing ones
    samples = store.samples()
    keys = ["layout_id", "protocol", "load_rps", "item", "size", "repeat"]
    assert not samples.duplicated(keys).any()
    assert len(samples) == len(after) * 3 * 2 * cfg.repetitions
    assert len(store.background_load()) == len(after)


# ---------------------------------------------------------------- the report

def test_the_report_shows_response_time_against_load(tmp_path: Path) -> None:
    from analysis.report import build_report
    from analysis.tables import load_run, response_time_table, response_time_vs_load_table

    cfg = _config(load=[0, 20, 40])
    store = _new(cfg, tmp_path)
    _run(cfg, store, ModelCluster(cfg.load_economy(), cfg.nodes, noise_ms=0.0))

    run = load_run(store.root)
    rl = response_time_vs_load_table(run)
    assert list(rl["load_rps"].unique()) == [0.0, 20.0, 40.0]
    assert list(rl["scheduler"].unique()) == ["kube_default", "netmarks"]
    assert (rl["load_achieved_rps"] == rl["load_rps"]).all()
    for _, g in rl.groupby("scheduler"):
        assert g.sort_values("load_rps")["mean"].is_monotonic_increasing
    # The paper's tables are per load (the report's at the lowest): same cells, slower
    # under load.
    rt_low, rt_high = (response_time_table(run.at_load(x)) for x in (0.0, 40.0))
    assert len(rt_low) == len(rt_high) == 2 * 3 * 2  # scheduler x item x size
    assert (rt_high["mean"].to_numpy() > rt_low["mean"].to_numpy()).all()

    report = build_report(store.root)
    text = report.path.read_text()
    assert "## Response time against background load" in text
    assert "(layout, protocol, load) chunks" in text
    assert "background load during measurement: 0, 20, 40 orders/s" in text
    assert "not run during the warm-up" in text
    for name in ("response_time_vs_load", "background_load"):
        assert (store.root / "tables" / f"{name}.csv").is_file()
    assert (store.root / "figures" / "response_time_vs_load.png").stat().st_size > 0
    assert "figures/response_time_vs_load.png" in text


def test_a_report_without_load_has_no_load_section(tmp_path: Path) -> None:
    from analysis.report import build_report

    cfg = _config(load=[])
    store = _new(cfg, tmp_path)
    _run(cfg, store, ModelCluster(cfg.load_economy(), cfg.nodes))
    text = build_report(store.root, figures=False).path.read_text()
    assert "background load" not in text and "(layout, protocol) chunks" in text
    assert not (store.root / "tables" / "response_time_vs_load.csv").exists()
