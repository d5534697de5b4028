"""The kubernetes backend's own logic without a cluster: per-phase values (their
rendering by the chart is in test_chart.py) and options; Istio's byte counters are
read in test_kube_meshbytes.py."""

from __future__ import annotations

import pytest

from harness.backends.kubernetes import PhaseValues, pins_by_item
from settlers.economy import load_economy


def test_pins_by_item_groups_replicas_in_index_order() -> None:
    placement = {"coal-1": "node-1", "coal-0": "node-2", "iron-ore-0": "node-3",
                 "water-0": "node-2"}
    assert pins_by_item(placement) == {"coal": ["node-2", "node-1"], "iron-ore": ["node-3"],
                                       "water": ["node-2"]}


def test_a_placement_that_does_not_fit_the_economy_is_refused() -> None:
    economy = load_economy()
    with pytest.raises(ValueError, match="unknown items: salt"):
        PhaseValues(economy=economy, placement={"salt-0": "node-1"}).render()
    with pytest.raises(ValueError, match="2 pod\\(s\\) of 'water', the economy has 1"):
        PhaseValues(economy=economy, placement={"water-0": "n", "water-1": "n"}).render()


def test_options_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from harness.backends.kubernetes import KubernetesOptions

    monkeypatch.setenv("SETTLERS_KUBE_NAMESPACE", "bench")
    monkeypatch.setenv("SETTLERS_KUBE_VALUES", "a.yaml,b.yaml")
    monkeypatch.setenv("SETTLERS_KUBE_SCHEDULERS", "external")
    monkeypatch.setenv("SETTLERS_KUBE_KEEP", "1")
    opts = KubernetesOptions.from_env(context="prod", namespace=None)
    assert opts.namespace == "bench" and opts.context == "prod" and opts.keep
    assert opts.values_files == (Path("a.yaml"), Path("b.yaml"))
    assert opts.schedulers == "external" and opts.data_plane == "auto"
    assert KubernetesOptions.from_env(namespace="x").namespace == "x"
