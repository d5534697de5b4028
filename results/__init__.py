"""The results format: what `harness run` writes and the analysis reads.

Below both the experiment (``harness``, which writes results) and the analysis
(``analysis``, which reads them), above ``settlers``, ``order_app`` and
``schedulers``; it imports neither of the two above it.

    from results import ResultsStore
    store = ResultsStore.open(Path("runs/<dir>"))
    store.manifest().config.schedulers        # the typed manifest, config embedded
    store.samples()                           # every measured order

Modules: ``store`` (the results directory), ``manifest`` (``manifest.json``, typed),
``config`` (the experiment's config, which the manifest embeds), ``layouts`` (the
measurement plan), ``links`` (link profiles), ``provenance`` (machine, versions).

The names below load their module on first use: the emulated cluster's mesh daemon
imports ``results.links`` at startup and must not pay for pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from results.config import ConfigError, ExperimentConfig, build_config
    from results.manifest import BackendDescription, Manifest, MeasurementPlan, new_manifest
    from results.store import ResultsStore, StoreError

__all__ = [
    "BackendDescription",
    "ConfigError",
    "ExperimentConfig",
    "Manifest",
    "MeasurementPlan",
    "ResultsStore",
    "StoreError",
    "build_config",
    "new_manifest",
]

_HOMES = {
    "BackendDescription": "results.manifest",
    "ConfigError": "results.config",
    "ExperimentConfig": "results.config",
    "Manifest": "results.manifest",
    "MeasurementPlan": "results.manifest",
    "ResultsStore": "results.store",
    "StoreError": "results.store",
    "build_config": "results.config",
    "new_manifest": "results.manifest",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'results' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
