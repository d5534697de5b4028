"""`harness run --backend kwok`: placements by the real kube-scheduler (and the NetMARKS
extender behind a second kube-scheduler) on a kwok control plane, layouts measured on
the emulated data plane."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest

from harness.config import build_config
from harness.run_cmd import new_manifest, run_experiment
from harness.store import ResultsStore


@pytest.fixture(scope="module")
def k8s_binaries(missing_tool: Callable[[str], NoReturn]) -> None:
    from harness.backends.kwok import K8sBinariesMissing, binaries

    try:
        binaries()
    except K8sBinariesMissing as exc:
        missing_tool(str(exc))


@pytest.mark.e2e
@pytest.mark.slow
def test_experiment_on_the_kwok_backend(k8s_binaries: None, tmp_path: Path) -> None:
    cfg = build_config(overrides={
        "backend": "kwok", "schedulers": ["netmarks"], "nodes": 3,
        "items": ["flour", "bread"], "deployments": 4, "sizes": [16, 4096],
        "protocols": ["http"], "repetitions": 1, "layout_budget": 3, "warmup_orders": 1,
        "warmup_seconds": 2, "bootstrap": 100,
    })
    store = ResultsStore.create(tmp_path / "run", new_manifest(cfg))
    run_experiment(cfg, store, quiet=True)

    placements = store.read_table("placements")
    assert sorted(placements["scheduler"].unique()) == ["kube_default", "netmarks"]
    assert len(placements) == 2 * 4
    samples = store.samples()
    assert samples["ok"].all(), samples.loc[~samples["ok"], "error"].tolist()
    assert 1 <= samples["layout_id"].nunique() <= 3
    # The real schedulers took measurable time to bind every pod through the API.
    assert (placements["seconds"] > 0).all()


def test_schedulers_without_a_real_counterpart_are_refused() -> None:
    from harness.backends.base import BackendUnavailable
    from harness.backends.registry import open_backend

    with pytest.raises(BackendUnavailable, match="optimal"):
        open_backend(build_config(overrides={"backend": "kwok", "schedulers": ["optimal"]}))
