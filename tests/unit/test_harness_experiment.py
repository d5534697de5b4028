"""The experiment loop over the model backend (no processes): stages, estimates, resume."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.backends.registry import describe
from harness.experiment import Experiment
from harness.testing import ModelCluster
from results.config import ExperimentConfig, build_config
from results.manifest import new_manifest
from results.store import ResultsStore


class Killed(BaseException):
    """Like KeyboardInterrupt: not an error the experiment retries."""


def _config(**overrides: Any) -> ExperimentConfig:
    base: dict[str, Any] = {
        "deployments": 6, "nodes": 3, "items": ["flour", "bread", "sword"],
        "sizes": [16, 65536], "protocols": ["http", "grpc"], "repetitions": 2,
        "layout_budget": 100, "warmup_orders": 1, "warmup_seconds": 0, "bootstrap": 200,
    }
    base.update(overrides)
    return build_config(overrides=base)


def _run(cfg: ExperimentConfig, store: ResultsStore, backend: ModelCluster,
         sweep: Any = None) -> None:
    asyncio.run(Experiment(cfg, store, backend.backend(), sweep=sweep or backend.sweep).run())


def test_census_run_recovers_the_models_expected_response_time(tmp_path: Path) -> None:
    from analysis.tables import load_run, response_time_table

    cfg = _config()
    store = ResultsStore.create(tmp_path / "run", new_manifest(cfg, describe(cfg.backend)))
    backend = ModelCluster(cfg.load_economy(), cfg.nodes, noise_ms=0.0)
    _run(cfg, store, backend)

    placements = store.read_table("placements")
    assert set(placements["scheduler"]) == {"kube_default", "netmarks"}
    assert len(placements) == 2 * cfg.deployments
    units = store.read_table("units")
    assert set(units["estimator"]) == {"census"}  # budget 100 > distinct layouts
    assert store.has("telemetry") and store.has("traffic")
    assert backend.planes_started == 2  # one data plane per protocol

    rt = response_time_table(load_run(store.root))
    for scheduler, group in placements.groupby("scheduler"):
        expected = sum(
            backend.expected_latency("sword", 65536, json.loads(a)) for a in group["assignments"]
        ) / len(group)
        row = rt[(rt["scheduler"] == scheduler) & (rt["item"] == "sword")
                 & (rt["size"] == 65536) & (rt["protocol"] == "http")]
        assert float(row["mean"].iloc[0]) == pytest.approx(expected)


def test_interrupted_run_resumes_without_loss_or_duplicates(tmp_path: Path) -> None:
    cfg = _config()
    store = ResultsStore.create(tmp_path / "run", new_manifest(cfg, describe(cfg.backend)))
    backend = ModelCluster(cfg.load_economy(), cfg.nodes)
    calls = {"n": 0}

    async def flaky(*args: Any, **kwargs: Any) -> pd.DataFrame:
        calls["n"] += 1
        if calls["n"] == 5:  # warm-up + 3 chunks, then the "kill"
            raise Killed
        return await backend.sweep(*args, **kwargs)

    with pytest.raises(Killed):
        _run(cfg, store, backend, sweep=flaky)
    assert backend.plane is not None and backend.plane.stopped  # cleaned up on failure
    first = {p.name: p.stat().st_mtime_ns for p in (store.root / "samples").glob("*.parquet")}
    assert len(first) == 3
    placements = (store.root / "placements.parquet").read_bytes()

    resumed = ModelCluster(cfg.load_economy(), cfg.nodes)
    _run(cfg, ResultsStore.open(store.root), resumed)
    after = {p.name: p.stat().st_mtime_ns for p in (store.root / "samples").glob("*.parquet")}
    assert all(after[name] == mtime for name, mtime in first.items())  # not redone
    assert (store.root / "placements.parquet").read_bytes() == placements
    layouts = store.read_table("layouts")
    measured = layouts["measure_rank"].notna().sum()
    assert len(after) == measured * len(cfg.protocols)
    samples = store.samples()
    keys = ["layout_id", "protocol", "item", "size", "repeat"]
    assert not samples.duplicated(keys).any()
    assert len(samples) == len(after) * 3 * 2 * cfg.repetitions


def test_budget_smaller_than_layouts_samples_and_states_it(tmp_path: Path) -> None:
    from analysis.report import build_report

    cfg = _config(deployments=30, layout_budget=4, protocols=["http"])
    store = ResultsStore.create(tmp_path / "run", new_manifest(cfg, describe(cfg.backend)))
    backend = ModelCluster(cfg.load_economy(), cfg.nodes)
    _run(cfg, store, backend)
    assert store.read_table("layouts")["measure_rank"].notna().sum() <= 4
    report = build_report(store.root, figures=False)
    text = report.path.read_text()
    assert "Hansen-Hurwitz" in text
    assert list(report.headline["scheduler"]) == ["kube_default", "netmarks"]


def test_a_crashed_pod_restarts_the_data_plane_and_the_layout_is_measured_again(
    tmp_path: Path,
) -> None:
    cfg = _config(protocols=["http"])
    store = ResultsStore.create(tmp_path / "run", new_manifest(cfg, describe(cfg.backend)))
    backend = ModelCluster(cfg.load_economy(), cfg.nodes)
    calls = {"n": 0}

    async def crash_once(*args: Any, **kwargs: Any) -> pd.DataFrame:
        calls["n"] += 1
        frame = await backend.sweep(*args, **kwargs)
        if calls["n"] == 3:  # during the second layout, a pod dies
            assert backend.plane is not None
            backend.plane.crashed["flour-0"] = "crashed (exit 2)"
        return frame

    _run(cfg, store, backend, sweep=crash_once)
    assert backend.planes_started == 2
    layouts = store.read_table("layouts")
    assert len(store.done_chunks()) == layouts["measure_rank"].notna().sum()
    assert not store.samples().duplicated(["layout_id", "item", "size", "repeat"]).any()


def test_a_data_plane_that_keeps_crashing_stops_the_run(tmp_path: Path) -> None:
    from harness.experiment import DataPlaneBroken

    cfg = _config(protocols=["http"])
    store = ResultsStore.create(tmp_path / "run", new_manifest(cfg, describe(cfg.backend)))
    backend = ModelCluster(cfg.load_economy(), cfg.nodes)

    async def always(*args: Any, **kwargs: Any) -> pd.DataFrame:
        frame = await backend.sweep(*args, **kwargs)
        assert backend.plane is not None
        backend.plane.crashed["bread-0"] = "crashed (exit 1)"
        return frame

    with pytest.raises(DataPlaneBroken, match="bread-0 crashed"):
        _run(cfg, store, backend, sweep=always)
    assert not store.done_chunks() and not store.has("traffic")


class _Clock:
    """Measurement time that passes only when the fake sweep says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _timed(backend: ModelCluster, clock: _Clock, per_layout: float, per_round: float,
           kill_after: int | None = None) -> Any:
    calls = {"n": 0}

    async def sweep(*args: Any, **kwargs: Any) -> pd.DataFrame:
        calls["n"] += 1
        if kill_after is not None and calls["n"] > kill_after:
            raise Killed
        frame = await backend.sweep(*args, **kwargs)
        # The orders' own time is what the frame says; the rest of a chunk is per layout.
        clock.now += per_layout + float(frame["latency_ms"].sum()) / 1000.0
        return frame

    return sweep


def _budgeted(tmp_path: Path, **overrides: Any) -> tuple[ExperimentConfig, ResultsStore,
                                                         ModelCluster]:
    cfg = _config(deployments=60, nodes=4, protocols=["http"], sizes=[65536],
                  time_budget=60.0, **overrides)
    store = ResultsStore.create(tmp_path / "run", new_manifest(cfg, describe(cfg.backend)))
    return cfg, store, ModelCluster(cfg.load_economy(), cfg.nodes, noise_ms=3.0)


def test_time_budget_pilot_then_allocation_and_units_cut_to_what_was_measured(
        tmp_path: Path) -> None:
    from results.allocation import PLAN_CAP, pilot_layouts

    cfg, store, backend = _budgeted(tmp_path)
    clock = _Clock()
    sweep = _timed(backend, clock, per_layout=2.0, per_round=0.0)
    asyncio.run(Experiment(cfg, store, backend.backend(), sweep=sweep, clock=clock).run())

    m = store.manifest()
    alloc = m.allocation
    assert alloc is not None and alloc.budget_s == 60.0
    assert alloc.pilot_layouts == pilot_layouts(2, alloc.available_layouts) == 6
    assert alloc.pilot_repetitions == 2
    assert alloc.per_layout_s == pytest.approx(2.0, rel=0.05)  # what the fake clock charged
    assert alloc.between >= 0 and alloc.within > 0 and 0 <= alloc.rho <= 1
    samples = store.samples()
    per_chunk = samples.groupby("layout_id")["chunk_seconds"].first()
    # The time spent keeps to the budget (one layout of slack at most).
    assert per_chunk.sum() <= 60.0 * 1.05 + per_chunk.max()
    reps = samples.groupby("layout_id")["repeat"].max() + 1
    pilot = m.plan.layouts[:alloc.pilot_layouts] if m.plan else []
    assert set(reps[reps.index.isin(pilot)]) == {2}
    assert set(reps[~reps.index.isin(pilot)]) <= {alloc.repetitions}
    # Units: a prefix per scheduler, every unit's layout measured.
    units = store.read_table("units")
    assert set(units["layout_id"]) <= set(samples["layout_id"])
    for _, group in units.groupby("scheduler"):
        assert list(group["unit"]) == list(range(len(group)))
    assert m.plan is not None and m.plan.layout_budget == PLAN_CAP
    assert set(m.plan.layouts) == set(units["layout_id"])


def test_time_budget_run_resumes_with_its_recorded_allocation(tmp_path: Path) -> None:
    cfg, store, backend = _budgeted(tmp_path)
    clock = _Clock()
    # Warm-up (one sweep) + the 6 pilot layouts + 2 more, then killed.
    sweep = _timed(backend, clock, per_layout=2.0, per_round=0.0, kill_after=9)
    with pytest.raises(Killed):
        asyncio.run(Experiment(cfg, store, backend.backend(), sweep=sweep, clock=clock).run())
    first = store.manifest().allocation
    assert first is not None
    done = set(store.done_chunks())
    assert len(done) == 8
    sweep = _timed(backend, clock, per_layout=2.0, per_round=0.0)
    asyncio.run(Experiment(cfg, store, backend.backend(), sweep=sweep, clock=clock).run())
    assert store.manifest().allocation == first  # not re-decided on resume
    samples = store.samples()
    assert done <= store.done_chunks()
    assert not samples.duplicated(["layout_id", "protocol", "item", "size", "repeat"]).any()
