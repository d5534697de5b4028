"""Replications (--replicates K) over the model backend: seeds, budget split, layout,
resume between and inside replicates, bad directories (harness.replicates)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.backends.registry import describe
from harness.experiment import Experiment
from harness.replicates import (
    check_replicates,
    measured_chunks,
    replicate_config,
    replicate_dir,
    replicate_seed,
    run_replicates,
)
from harness.testing import ModelCluster
from results import provenance
from results.config import ExperimentConfig, build_config
from results.manifest import new_manifest
from results.store import ResultsStore, StoreError


class Killed(BaseException):
    """Like KeyboardInterrupt: not an error the experiment retries."""


def _config(**overrides: Any) -> ExperimentConfig:
    base: dict[str, Any] = {
        "deployments": 6, "nodes": 3, "items": ["flour", "sword"], "sizes": [16, 65536],
        "protocols": ["http"], "repetitions": 2, "layout_budget": 100, "warmup_orders": 1,
        "warmup_seconds": 0, "bootstrap": 100, "replicates": 3,
    }
    base.update(overrides)
    return build_config(overrides=base)


def _store(cfg: ExperimentConfig, root: Path) -> ResultsStore:
    return ResultsStore.create(root, new_manifest(cfg, describe(cfg.backend)))


class Runner:
    """run_one for run_replicates: an experiment on a fresh model cluster seeded like the
    replicate, marked finished as run_cmd.run_experiment does; ``kill_at`` (replicate,
    sweep) raises Killed at that replicate's sweep (1: the warm-up, then one a chunk)."""

    def __init__(self, kill_at: tuple[int, int] | None = None) -> None:
        self.kill_at = kill_at
        self.seeds: list[int] = []

    def __call__(self, cfg: ExperimentConfig, store: ResultsStore) -> None:
        self.seeds.append(cfg.seed)
        cluster = ModelCluster(cfg.load_economy(), cfg.nodes, seed=cfg.seed)
        sweeps = [0]

        async def sweep(*args: Any, **kwargs: Any) -> pd.DataFrame:
            sweeps[0] += 1
            if (store.manifest().replicate, sweeps[0]) == self.kill_at:
                raise Killed
            return await cluster.sweep(*args, **kwargs)

        asyncio.run(Experiment(cfg, store, cluster.backend(), sweep=sweep).run())
        store.update_manifest(finished_at=provenance.now())


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns
            for p in root.rglob("*.parquet")}


def test_seeds_are_distinct_reproducible_and_the_first_is_the_runs() -> None:
    for seed in (0, 1, 7, 12345):
        seeds = [replicate_seed(seed, r) for r in range(1, 11)]
        assert seeds[0] == seed
        assert len(set(seeds)) == 10
        assert seeds == [replicate_seed(seed, r) for r in range(1, 11)]
    assert replicate_seed(1, 2) != replicate_seed(2, 2)
    with pytest.raises(ValueError, match="at least 1"):
        replicate_seed(1, 0)


def test_replicate_config_splits_the_time_budget_and_keeps_the_rest() -> None:
    cfg = _config(time_budget="30m")
    for r in (1, 2, 3):
        sub = replicate_config(cfg, r)
        assert sub.replicates == 1
        assert sub.time_budget == pytest.approx(600.0)
        assert sub.seed == replicate_seed(cfg.seed, r)
        assert sub.model_dump(exclude={"seed", "replicates", "time_budget"}) == \
            cfg.model_dump(exclude={"seed", "replicates", "time_budget"})
    assert replicate_config(_config(), 2).time_budget is None
    with pytest.raises(ValueError, match="replicate 4 of a run with 3"):
        replicate_config(cfg, 4)


def test_replicates_zero_is_rejected_with_a_clear_error() -> None:
    from results.config import ConfigError

    with pytest.raises(ConfigError, match="replicates"):
        _config(replicates=0)


def test_a_replicated_run_writes_one_ordinary_directory_per_replicate(tmp_path: Path) -> None:
    cfg = _config()
    store = _store(cfg, tmp_path / "run")
    runner, notes = Runner(), []
    run_replicates(cfg, store, runner, note=notes.append)

    top = store.manifest()
    assert top.config.replicates == 3 and top.replicate is None
    assert [r.index for r in top.replicates] == [1, 2, 3]
    assert [r.seed for r in top.replicates] == runner.seeds
    assert runner.seeds[0] == cfg.seed and len(set(runner.seeds)) == 3
    assert not store.done_chunks()  # the top level holds no measurements itself
    for entry in top.replicates:
        sub = ResultsStore.open(store.root / entry.path)
        m = sub.manifest()
        assert m.replicate == entry.index and m.config.seed == entry.seed
        assert m.config.replicates == 1 and m.finished_at is not None
        assert sub.has("placements") and sub.done_chunks()
    assert [n.split(":")[0].split(" (")[0] for n in notes] == [
        "replicate 1 of 3", "replicate 2 of 3", "replicate 3 of 3"]
    # Independent: different seeds give different warm-up layouts.
    warmups = {json.dumps(ResultsStore.open(replicate_dir(store.root, r)).manifest()
                          .warmup_placement, sort_keys=True) for r in (1, 2, 3)}
    assert len(warmups) == 3


def test_replicate_one_is_the_single_run_with_the_same_seed(tmp_path: Path) -> None:
    cfg = _config(replicates=2)
    store = _store(cfg, tmp_path / "rep")
    run_replicates(cfg, store, Runner())
    single_cfg = _config(replicates=1)
    single = _store(single_cfg, tmp_path / "single")
    Runner()(single_cfg, single)
    r1 = ResultsStore.open(replicate_dir(store.root, 1))
    cols = ["scheduler", "deployment", "layout_id"]
    pd.testing.assert_frame_equal(r1.read_table("placements")[cols],
                                  single.read_table("placements")[cols])


@pytest.mark.parametrize("killed_in", [1, 2])
def test_resume_after_a_kill_inside_a_replicate_loses_and_repeats_nothing(
        tmp_path: Path, killed_in: int) -> None:
    cfg = _config()
    store = _store(cfg, tmp_path / "run")
    with pytest.raises(Killed):
        run_replicates(cfg, store, Runner(kill_at=(killed_in, 3)))
    before = _files(store.root)
    # The killed replicate had its warm-up and one chunk (the second was being measured).
    assert sum(k.startswith(f"replicates/r{killed_in}/samples/") for k in before) == 1

    resumed = Runner()
    run_replicates(cfg, ResultsStore.open(store.root), resumed)
    after = _files(store.root)
    # Every part written before the kill is untouched (not measured again) ...
    assert all(after[name] == mtime for name, mtime in before.items())
    # ... finished replicates were not run again, and every replicate is complete.
    assert resumed.seeds == [replicate_seed(cfg.seed, r) for r in range(killed_in, 4)]
    for r in (1, 2, 3):
        sub = ResultsStore.open(replicate_dir(store.root, r))
        plan = sub.manifest().plan
        assert plan is not None and sub.manifest().finished_at is not None
        assert sub.done_chunks() == {f"{lid}-http" for lid in plan.layouts}
        samples = sub.samples()
        assert not samples.duplicated(["layout_id", "protocol", "item", "size",
                                       "repeat"]).any()
        assert len(samples) == len(plan.layouts) * 2 * 2 * cfg.repetitions
    assert measured_chunks(store) == sum(
        len(ResultsStore.open(replicate_dir(store.root, r)).done_chunks()) for r in (1, 2, 3))


def test_resume_after_a_kill_between_replicates(tmp_path: Path) -> None:
    cfg = _config()
    store = _store(cfg, tmp_path / "run")

    def first_only(c: ExperimentConfig, s: ResultsStore) -> None:
        if s.manifest().replicate == 2:
            raise Killed
        Runner()(c, s)

    with pytest.raises(Killed):
        run_replicates(cfg, store, first_only)
    r1 = _files(replicate_dir(store.root, 1))
    # A kill between creating r3's folders and writing its manifest leaves empty folders.
    (replicate_dir(store.root, 3) / "samples").mkdir(parents=True)
    resumed = Runner()
    run_replicates(cfg, ResultsStore.open(store.root), resumed)
    assert _files(replicate_dir(store.root, 1)) == r1
    assert resumed.seeds == [replicate_seed(cfg.seed, 2), replicate_seed(cfg.seed, 3)]


def test_a_corrupted_or_foreign_replicate_directory_is_a_clear_error(tmp_path: Path) -> None:
    cfg = _config()
    store = _store(cfg, tmp_path / "run")
    run_replicates(cfg, store, Runner())
    manifest = replicate_dir(store.root, 2) / "manifest.json"
    original = manifest.read_text()

    manifest.write_text("{ not json")
    with pytest.raises(StoreError, match=r"r2/manifest\.json is not a manifest"):
        check_replicates(store)

    data = json.loads((replicate_dir(store.root, 1) / "manifest.json").read_text())
    manifest.write_text(json.dumps(data))  # replicate 1's manifest in r2
    with pytest.raises(StoreError, match="says replicate 1 with seed 1, the run expects "
                                         "replicate 2"):
        run_replicates(cfg, store, Runner())

    manifest.write_text(original)
    stray = replicate_dir(store.root, 3)
    (stray / "manifest.json").unlink()
    with pytest.raises(StoreError, match=r"has files but no manifest\.json"):
        run_replicates(cfg, ResultsStore.open(store.root), Runner())


def test_run_replicates_refuses_a_single_run(tmp_path: Path) -> None:
    cfg = _config(replicates=1)
    with pytest.raises(ValueError, match="replicates >= 2"):
        run_replicates(cfg, _store(cfg, tmp_path / "run"), Runner())


@pytest.mark.cli
def test_the_cli_rejects_replicates_0_and_a_corrupted_replicate_on_resume(
        tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from harness.cli import app

    bad = CliRunner().invoke(app, ["run", "--replicates", "0", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2
    assert "replicates" in bad.output and "error" in bad.output and not (tmp_path / "x").exists()

    cfg = _config(replicates=2)
    store = _store(cfg, tmp_path / "run")
    r1 = replicate_dir(store.root, 1)
    r1.mkdir(parents=True)
    (r1 / "manifest.json").write_text("{ truncated")
    done = CliRunner().invoke(app, ["run", "--resume", str(store.root)])
    assert done.exit_code == 2, done.output
    text = " ".join(done.output.split())  # wrapping depends on the path's length
    assert "error:" in text and "is not a manifest this version reads" in text


def test_each_replicate_measures_under_its_share_of_the_time_budget(tmp_path: Path) -> None:
    cfg = _config(time_budget="3s", deployments=20)
    store = _store(cfg, tmp_path / "run")
    run_replicates(cfg, store, Runner())
    assert [r.time_budget for r in store.manifest().replicates] == [1.0, 1.0, 1.0]
    for r in (1, 2, 3):
        allocation = ResultsStore.open(replicate_dir(store.root, r)).manifest().allocation
        assert allocation is not None and allocation.budget_s == pytest.approx(1.0)
