"""A sweep's grid: plan every point (checked before anything runs), then run the points
one after another as ordinary runs, skipping finished ones and resuming a started one.

The run itself is a parameter (``run_point``), so the command passes the real
``run_experiment`` and tests pass a model; this module knows the grid and the
directories, not how a run measures.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from harness.backends.registry import describe
from results import provenance
from results.config import ConfigError, ExperimentConfig, build_config
from results.manifest import Machine, new_manifest
from results.store import MANIFEST, ResultsStore
from results.sweep import (
    SweepManifest,
    SweepPoint,
    level_label,
    point_name,
    point_settings,
    read_sweep_manifest,
    write_sweep_manifest,
)

__all__ = [
    "PointState",
    "expand_grid",
    "new_sweep",
    "plan_points",
    "point_state",
    "run_sweep",
]

PointState = Literal["new", "started", "finished"]
RunPoint = Callable[[ExperimentConfig, ResultsStore], None]


def expand_grid(factors: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the levels, the first factor varying slowest."""
    names = list(factors)
    return [dict(zip(names, combo, strict=True))
            for combo in itertools.product(*(factors[n] for n in names))]


def plan_points(factors: Mapping[str, Sequence[Any]], *, preset: str | None = None,
                file: Path | None = None,
                settings: Mapping[str, Any] | None = None) -> list[SweepPoint]:
    """Every grid point with its full, validated settings.

    Each level is checked alone first, so a bad one is named as ``--factor
    SETTING=LEVEL``; then every combination (levels valid alone may clash, e.g. a
    topology with another node count). ConfigError before any run starts.
    """
    if not factors:
        raise ConfigError("a sweep needs at least one --factor SETTING=LEVEL[,LEVEL...] "
                          "(or 'factors' in a sweep file)")
    settings = {k: v for k, v in (settings or {}).items() if v is not None}
    for setting, levels in factors.items():
        if not levels:
            raise ConfigError(f"--factor {setting}: give at least one level")
        for level in levels:
            try:
                build_config(preset=preset, file=file,
                             overrides=point_settings(settings, {setting: level}))
            except ConfigError as exc:
                raise ConfigError(f"--factor {setting}={level_label(level)}: {exc}") from None
    points = []
    for index, values in enumerate(expand_grid(factors)):
        name = point_name(index, values)
        try:
            cfg = build_config(preset=preset, file=file,
                               overrides=point_settings(settings, values))
        except ConfigError as exc:
            raise ConfigError(f"grid point {name}: {exc}") from None
        if cfg.replicates > 1:
            # The sweep's tables read one run per point; a replicated point's run lives
            # in its replicates/ folders. Replications across a sweep: vary the seed.
            raise ConfigError(f"grid point {name}: replicates {cfg.replicates}: a sweep "
                              "point is one run; vary the seed instead (--factor "
                              "seed=1,2,3), or drop --preset paper / replicates")
        points.append(SweepPoint(index=index, name=name, values=values,
                                 config=cfg.model_dump()))
    return points


def new_sweep(root: Path, *, command: str, factors: Mapping[str, Sequence[Any]],
              base: Mapping[str, Any], points: list[SweepPoint]) -> SweepManifest:
    """Write ``sweep.json`` into a new (or empty) directory."""
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise ConfigError(f"{root} exists and is not empty; pick another --out or continue "
                          f"it with --resume {root}")
    manifest = SweepManifest(
        command=command, factors={k: list(v) for k, v in factors.items()}, base=dict(base),
        points=points, started_at=provenance.now(),
        machine=Machine.model_validate(provenance.machine()), versions=provenance.versions())
    write_sweep_manifest(root, manifest)
    return manifest


def point_state(directory: Path) -> PointState:
    """new (no results yet), started (a manifest, not finished) or finished."""
    if not (directory / MANIFEST).is_file():
        return "new"
    finished = ResultsStore.open(directory).manifest().finished_at
    return "finished" if finished else "started"


def run_sweep(root: Path, run_point: RunPoint, *,
              notify: Callable[[int, int, SweepPoint, PointState], None] | None = None,
              ) -> SweepManifest:
    """Run every point of the sweep in ``root`` not finished yet; resumable at any time.

    Finished points are skipped, a started one continues with the run's own resume
    (its stored settings), new ones are created from the settings ``sweep.json`` planned.
    """
    root = Path(root)
    manifest = read_sweep_manifest(root)
    states = {p.name: point_state(manifest.point_dir(root, p)) for p in manifest.points}
    if any(s != "new" for s in states.values()):
        manifest = manifest.model_copy(update={"resumed_at": [*manifest.resumed_at,
                                                               provenance.now()]})
        write_sweep_manifest(root, manifest)
    total = len(manifest.points)
    for point in manifest.points:
        directory = manifest.point_dir(root, point)
        state = states[point.name]
        if notify is not None:
            notify(point.index, total, point, state)
        if state == "finished":
            continue
        if state == "started":
            store = ResultsStore.open(directory)
            cfg = ExperimentConfig.model_validate(
                store.manifest().config.model_dump(mode="json"))
        else:
            _clear_empty(directory)
            cfg = ExperimentConfig.model_validate(point.config)
            store = ResultsStore.create(directory, new_manifest(cfg, describe(cfg.backend)))
        run_point(cfg, store)
    manifest = manifest.model_copy(update={"finished_at": provenance.now()})
    write_sweep_manifest(root, manifest)
    return manifest


def _clear_empty(directory: Path) -> None:
    # A point stopped between creating its folders and writing its manifest holds only
    # empty folders: nothing measured, so it starts afresh rather than failing.
    if directory.exists() and not any(p.is_file() for p in directory.rglob("*")):
        shutil.rmtree(directory)
