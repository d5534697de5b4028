"""A zones cluster on real processes: a cross-zone hop costs its configured extra latency."""

from __future__ import annotations

import statistics

import pytest

from harness.backends.emulated import ClusterSpec, EmulatedCluster
from results.links import LINK_PRESETS, LinkProfile
from results.topology import resolve_topology
from settlers.client import open_client
from settlers.economy import load_economy

pytestmark = pytest.mark.slow

CHAIN = load_economy().subset(["flour"])   # grain -> flour: two pods
CROSS_MS = 4.0


async def test_a_cross_zone_hop_is_slower_than_a_same_zone_hop_by_the_difference() -> None:
    # zones on 4 nodes: node-1 and node-4 share zone-a, node-2 is in zone-b.
    topology = resolve_topology("zones", nodes=4, link=LinkProfile(CROSS_MS, 1000.0))
    assert topology.pair_class("node-1", "node-4") == "same-zone"
    assert topology.pair_class("node-1", "node-2") == "cross-zone"
    spec = ClusterSpec(economy=CHAIN, prometheus=False, topology=topology)
    cluster = await EmulatedCluster.start(spec, {"grain-0": "node-4", "flour-0": "node-1"})
    samples: dict[str, list[float]] = {"node-4": [], "node-2": []}
    try:
        assert cluster.node_names == ["node-1", "node-2", "node-3", "node-4"]
        assert cluster.describe()["topology"]["name"] == "zones"
        async with open_client(cluster.entry("flour"), "http") as client:
            # The layouts alternate order by order, so a busy machine slows both alike.
            for i in range(17):
                for node, into in samples.items():
                    await cluster.relayout({"grain-0": node})
                    latency = (await client.produce("flour", 1, 16)).latency_s * 1000
                    if i >= 2:   # warm-up: the first calls open the connections
                        into.append(latency)
        traffic = cluster.traffic_snapshot()
    finally:
        await cluster.stop()
    same, cross = statistics.median(samples["node-4"]), statistics.median(samples["node-2"])
    # A request and a response each pay (cross - same) one-way latency more; a loaded
    # machine stretches timer wake-ups by milliseconds (as in test_cluster_links).
    expected = 2 * (CROSS_MS - LINK_PRESETS["lan"].latency_ms)
    assert expected * 0.85 < cross - same < expected + 6.0, (same, cross)
    assert set(traffic.dst_node) == {"node-2", "node-4"}
