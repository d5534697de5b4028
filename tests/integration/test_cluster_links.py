"""A two-pod chain (flour <- grain) on real processes: co-located vs split, relayout."""

from __future__ import annotations

import statistics

import pytest

from harness.backends.emulated import ClusterSpec, EmulatedCluster
from harness.backends.emulated.procs import port_in_use
from harness.backends.pids import pid_alive
from results.links import LinkProfile
from settlers.client import open_client
from settlers.economy import load_economy
from settlers.wire import PROTOCOLS, WireProtocol

pytestmark = pytest.mark.slow

CHAIN = load_economy().subset(["flour"])   # grain -> flour: two pods
LATENCY_MS = 4.0


async def _alternating_ms(cluster: EmulatedCluster, protocol: WireProtocol,
                         n: int = 15) -> tuple[float, float]:
    """Median order latency with grain-0 on flour's node and on the other node. The
    layouts alternate order by order, so a busy machine slows both samples alike."""
    samples: dict[str, list[float]] = {"node-1": [], "node-2": []}
    async with open_client(cluster.entry("flour"), protocol) as client:
        for i in range(n + 2):
            for node, into in samples.items():
                await cluster.relayout({"grain-0": node})
                latency = (await client.produce("flour", 1, 16)).latency_s * 1000
                if i >= 2:   # warm-up: the first calls open the connections
                    into.append(latency)
    return statistics.median(samples["node-1"]), statistics.median(samples["node-2"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_split_pods_pay_the_link_and_relayout_moves_them(
        protocol: WireProtocol) -> None:
    spec = ClusterSpec(nodes=2, link=LinkProfile(LATENCY_MS, 1000.0), economy=CHAIN,
                       protocol=protocol, prometheus=False)
    cluster = await EmulatedCluster.start(spec, {"grain-0": "node-1", "flour-0": "node-1"})
    pids, ports = cluster.pids(), cluster.ports()
    try:
        assert {p.name for p in cluster.pods} == {"grain-0", "flour-0"}
        together, apart = await _alternating_ms(cluster, protocol)
        assert cluster.placement == {"grain-0": "node-2", "flour-0": "node-1"}
        traffic = cluster.traffic_snapshot()
    finally:
        await cluster.stop()
    # One request and one response cross the link: 2 x 4 ms, plus each receiver's
    # wake-up after sleeping 4 ms, which a machine busy with other work stretches to
    # milliseconds (bench/link.py measures the accuracy on a calmer machine).
    added = apart - together
    assert 2 * LATENCY_MS * 0.9 < added < 2 * LATENCY_MS + 6.0, (together, apart)
    crossed = traffic[traffic.src_node != traffic.dst_node]
    assert list(crossed[["source_workload", "destination_workload", "src_node", "dst_node"]]
                .itertuples(index=False, name=None)) == [("flour", "grain", "node-1", "node-2")]
    local = traffic[traffic.src_node == traffic.dst_node]
    assert set(local.src_node) == {"node-1"}
    assert not any(pid_alive(pid) for pid in pids)
    assert not any(port_in_use(port) for port in ports)


async def test_bad_placements_are_refused_with_the_reason() -> None:
    spec = ClusterSpec(nodes=2, economy=CHAIN, prometheus=False)
    with pytest.raises(ValueError, match=r"unknown node.*node-7"):
        await EmulatedCluster.start(spec, {"grain-0": "node-7", "flour-0": "node-1"})
    with pytest.raises(ValueError, match="unplaced: flour-0"):
        await EmulatedCluster.start(spec, {"grain-0": "node-1"})
    async with await EmulatedCluster.start(spec) as cluster:
        with pytest.raises(ValueError, match=r"unknown pod.*bread-0"):
            await cluster.relayout({"bread-0": "node-1"})
        with pytest.raises(ValueError, match="unknown item 'bread'"):
            cluster.entry("bread")
