"""The trade binder on a real control plane: started the way the kwok backend starts it
(``host_schedulers`` with the zones topology's delays as ``--network FILE``), it binds
pods through the API where the Python model of the same batch puts them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.backends.k8s import KwokCluster, counterpart
from harness.backends.k8s.hostsched import host_schedulers
from harness.backends.k8s.workloads import DeploymentSpec, create_deployments, wait_bound
from harness.backends.registry import describe
from harness.run_cmd import run_experiment
from results.config import build_config
from results.manifest import new_manifest
from results.store import ResultsStore
from results.topology import resolve_topology
from schedulers import TrafficMatrix, get_policy, pods_for_economy
from schedulers.k8s_json import node_from_json, pod_from_json

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Heavy traffic inside each pair, none across. 3 CPU pods on the 4 CPU nodes: no two
# share a node, so where a partner goes shows what the delays do.
PAIRS = {("alpha", "beta"): 1e6, ("gamma", "delta"): 1e3}


def test_the_trade_binder_places_as_the_model_does(
    kwok_cluster: KwokCluster, namespace: str
) -> None:
    # The shared cluster's node-1..node-5 read as the zones preset: node-1 and node-4
    # in zone-a, node-2 and node-5 in zone-b, node-3 in zone-c.
    zones = resolve_topology("zones", nodes=len(kwok_cluster.node_names))
    traffic = TrafficMatrix(PAIRS)
    found = counterpart("trade")
    assert found is not None
    specs = [DeploymentSpec(name, cpu_m=3000) for pair in PAIRS for name in pair]
    with host_schedulers(found, found.scheduler_name, kubeconfig=kwok_cluster.kubeconfig,
                         context=None, traffic=traffic, network=zones.network()):
        create_deployments(kwok_cluster, namespace, specs, found.scheduler_name)
        bound = wait_bound(kwok_cluster, namespace, len(specs), timeout=60)
    where = {p.metadata.labels["app"]: p.spec.node_name for p in bound}
    # Hand-worked as in tests/unit/test_sched_trade.py: the heavier pair first, a pair's
    # names in order (delta before gamma); the first on the least utilised node, its
    # partner on the other node of that zone.
    assert where == {"alpha": "node-1", "beta": "node-4", "delta": "node-2",
                     "gamma": "node-5"}, where

    # The model, given what the binder saw: the nodes, the pods of other tests, ours.
    core = kwok_cluster.core_v1()
    serialise = core.api_client.sanitize_for_serialization
    nodes = [node_from_json(serialise(n)) for n in core.list_node().items]
    ours: list[Any] = []
    others = []
    for raw in (serialise(p) for p in core.list_pod_for_all_namespaces().items):
        if raw["metadata"]["namespace"] == namespace:
            ours.append(pod_from_json(raw, name=raw["metadata"]["name"]))
        elif raw["spec"].get("nodeName"):
            others.append((pod_from_json(raw, name=raw["metadata"]["name"]),
                           raw["spec"]["nodeName"]))
    model = get_policy("trade", traffic=traffic, network=zones.network()).schedule(
        ours, nodes, running=others)
    assert {p.workload: model.assignments[p.name] for p in ours} == where


def test_harness_run_on_kwok_places_with_the_binder_as_the_model_does(
    k8s_binaries: object, tmp_path: Path
) -> None:
    """`harness run --backend kwok -s trade --topology zones`, small: every redeployment
    the binder made is the layout the model gives for the run's traffic and topology."""
    cfg = build_config(overrides={
        "backend": "kwok", "schedulers": ["trade"], "nodes": 5, "topology": "zones",
        "items": ["flour", "bread"], "deployments": 3, "sizes": [16], "protocols": ["http"],
        "repetitions": 1, "layout_budget": 2, "warmup_orders": 1, "warmup_seconds": 2,
        "bootstrap": 100,
    })
    store = ResultsStore.create(tmp_path / "run", new_manifest(cfg, describe(cfg.backend)))
    run_experiment(cfg, store, quiet=True)

    assert cfg.topology is not None
    traffic = TrafficMatrix.from_dataframe(store.read_table("traffic"))
    model = get_policy("trade", traffic=traffic, network=cfg.topology.network()).schedule(
        pods_for_economy(cfg.load_economy()), cfg.topology.model_nodes())
    placements = store.read_table("placements")
    trade = placements[placements["scheduler"] == "trade"]
    assert len(trade) == 3
    for raw in trade["assignments"]:
        assert (json.loads(raw) if isinstance(raw, str) else dict(raw)) == model.assignments
