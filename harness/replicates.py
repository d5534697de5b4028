"""Replications (``harness run --replicates K``): K independent runs in one results directory.

One run's intervals cover the spread of its own layouts and orders, not what changes
between days (the machine's state, the warm-up's traffic matrix, which layouts the
redeployments happened to produce): the same command gave 27 % and 48 % on different
days (issue 14). Independent replications make that spread measurable. Layout::

    DIR/manifest.json            the run: config with replicates=K, the replicates listed
    DIR/replicates/r1/ ... rK/   each an ordinary results directory (replicates=1, its
                                 own seed and share of the time budget)

Replicate 1 uses the run's seed, so a K-replicate run extends a single run with that
seed; replicate r > 1 uses a seed derived from (seed, r) by numpy's SeedSequence, so
every stage that follows the seed (warm-up placement, creation orders, redeployments,
layout sampling, background load) is independent between replicates and reproducible.

The replicates run one after another. Resuming the top-level directory skips the
finished ones, resumes the interrupted one chunk by chunk (the experiment's own
machinery) and creates the later ones: nothing is lost or measured twice.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from results.config import ExperimentConfig
from results.manifest import Replicate, new_manifest
from results.store import ResultsStore, StoreError

__all__ = [
    "REPLICATES_DIR",
    "check_replicates",
    "measured_chunks",
    "open_replicate",
    "replicate_config",
    "replicate_dir",
    "replicate_seed",
    "replicates",
    "run_replicates",
]

REPLICATES_DIR = "replicates"
MANIFEST_NAME = "manifest.json"

RunOne = Callable[[ExperimentConfig, ResultsStore], None]


def replicate_seed(seed: int, index: int) -> int:
    """Replicate ``index``'s seed (1-based): the run's seed for 1, else a 32-bit seed
    drawn from ``SeedSequence(seed)``'s child ``index - 1`` (reproducible, independent)."""
    if index < 1:
        raise ValueError(f"replicate index must be at least 1, got {index}")
    if index == 1:
        return seed
    if seed < 0:
        raise ValueError(f"replicated runs need a seed >= 0, got {seed}")
    child = np.random.SeedSequence(seed, spawn_key=(index - 1,))
    return int(child.generate_state(1, np.uint32)[0])


def replicate_config(config: ExperimentConfig, index: int) -> ExperimentConfig:
    """Replicate ``index``'s config: one replication with its own seed and an equal
    share of the run's time budget, everything else as the run's."""
    if not 1 <= index <= config.replicates:
        raise ValueError(f"replicate {index} of a run with {config.replicates}")
    budget = None if config.time_budget is None else config.time_budget / config.replicates
    return config.model_copy(update={"seed": replicate_seed(config.seed, index),
                                     "replicates": 1, "time_budget": budget})


def replicate_dir(root: Path, index: int) -> Path:
    return Path(root) / REPLICATES_DIR / f"r{index}"


def replicates(config: ExperimentConfig) -> list[Replicate]:
    """The replicates of a run, as its top-level manifest lists them."""
    out = []
    for index in range(1, config.replicates + 1):
        cfg = replicate_config(config, index)
        out.append(Replicate(index=index, seed=cfg.seed, time_budget=cfg.time_budget,
                             path=f"{REPLICATES_DIR}/r{index}"))
    return out


def open_replicate(store: ResultsStore, config: ExperimentConfig, index: int) -> ResultsStore:
    """Replicate ``index``'s store under the run's ``store``: created on first use (its
    manifest records its index and seed), else opened and checked against the run."""
    root = replicate_dir(store.root, index)
    expected = replicate_config(config, index)
    if (root / MANIFEST_NAME).is_file():
        sub = ResultsStore.open(root)
        _check(sub, expected, index)
        return sub
    if root.exists() and any(p for p in root.rglob("*") if p.is_file()):
        raise StoreError(f"{root} has files but no {MANIFEST_NAME}: not a replicate this run "
                         "wrote; move it away to measure replicate "
                         f"{index} afresh (the others are kept)")
    if root.exists():  # killed between the folders and the manifest: nothing measured
        for folder in sorted(root.rglob("*"), reverse=True):
            folder.rmdir()
        root.rmdir()
    manifest = new_manifest(expected, store.manifest().backend).updated(replicate=index)
    return ResultsStore.create(root, manifest)


def _check(sub: ResultsStore, expected: ExperimentConfig, index: int) -> None:
    manifest = sub.manifest()  # StoreError if unreadable
    if manifest.replicate != index or manifest.config.seed != expected.seed:
        raise StoreError(
            f"{sub.root}: its manifest says replicate {manifest.replicate} with seed "
            f"{manifest.config.seed}, the run expects replicate {index} with seed "
            f"{expected.seed}; it is not this run's replicate")


def check_replicates(store: ResultsStore) -> None:
    """Fail early (StoreError) if any existing replicate directory is not this run's,
    before hours go into the others."""
    config = store.manifest().config
    for index in range(1, config.replicates + 1):
        root = replicate_dir(store.root, index)
        if (root / MANIFEST_NAME).is_file():
            _check(ResultsStore.open(root), replicate_config(config, index), index)


def run_replicates(config: ExperimentConfig, store: ResultsStore, run_one: RunOne, *,
                   note: Callable[[str], None] = lambda message: None) -> None:
    """Run (or continue) every replicate of ``config`` into ``store``, one after another;
    ``run_one(config, store)`` runs one ordinary experiment (and resumes one)."""
    if config.replicates < 2:
        raise ValueError("run_replicates is for replicates >= 2; run a single run directly")
    if not store.manifest().replicates:
        store.update_manifest(replicates=replicates(config))
    check_replicates(store)
    for entry in store.manifest().replicates:
        sub = open_replicate(store, config, entry.index)
        where = f"replicate {entry.index} of {config.replicates} (seed {entry.seed}, {sub.root})"
        if sub.manifest().finished_at is not None:
            note(f"{where}: finished, kept")
            continue
        done = len(sub.done_chunks())
        note(f"{where}: " + (f"resuming, {done} chunks already measured" if done
                             else "starting"))
        run_one(replicate_config(config, entry.index), sub)


def measured_chunks(store: ResultsStore) -> int:
    """Chunks measured in ``store``, a single run or a replicated one (all replicates)."""
    return len(store.done_chunks()) + sum(
        1 for _ in store.root.glob(f"{REPLICATES_DIR}/r*/samples/*.parquet"))
