"""A topology's nodes on a real kwok control plane: the labels and CPU kwok's nodes carry,
and what the kubernetes backend reads back from the cluster for the scheduler models."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.backends.k8s import K8sBinaries, KwokCluster
from harness.backends.kubernetes.cluster import _to_node
from results.topology import REGION_LABEL, ZONE_LABEL, resolve_topology

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_kwok_nodes_carry_the_topology_and_read_back_as_model_nodes(
    k8s_binaries: K8sBinaries, tmp_path: Path
) -> None:
    topology = resolve_topology("edge-cloud", nodes=3)
    cluster = KwokCluster.start(nodes=3, topology=topology, workdir=tmp_path, bins=k8s_binaries)
    try:
        read = sorted((_to_node(n) for n in cluster.core_v1().list_node().items),
                      key=lambda n: n.name)
    finally:
        cluster.stop()
    want = topology.model_nodes()
    assert [n.name for n in read] == [n.name for n in want]
    for got, expected in zip(read, want, strict=True):
        for key in (ZONE_LABEL, REGION_LABEL):
            assert got.labels[key] == expected.labels[key]
        assert got.cpu_m == expected.cpu_m
    assert [n.cpu_m for n in read] == [2000, 2000, 4000]
