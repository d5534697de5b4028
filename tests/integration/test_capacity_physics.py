"""Node capacity is physics: CPU work on a small node takes longer, co-located pods share.

Real ``settlers serve`` processes in real kernel CPU groups (emulated.capacity), at
scale 1 (a node of 100 millicores gets a tenth of one of this machine's cores).
Each pod does 50 ms of CPU work per unit (``work_ms``, counted in CPU time), so the
wall time of an order is set by how much CPU its node lets it have. The tolerances
hold on a busy 2-core machine: the caps only ever slow the small node down, and a
loaded machine can only slow the large one, which narrows the ratio from ten.
"""

from __future__ import annotations

import asyncio
import statistics
from pathlib import Path

import pytest

from harness.backends.emulated import ClusterSpec, EmulatedCluster
from settlers.client import open_client
from settlers.economy import Economy, load_economy

pytestmark = pytest.mark.slow

WORK_MS = 50
UNITS = 2   # 100 ms of CPU per order: two CFS periods' worth on a 1000m node


def _economy(tmp_path: Path) -> Economy:
    path = tmp_path / "work.yaml"
    path.write_text(f"name: work\ndefaults: {{work_ms: {WORK_MS}}}\nitems:\n  a: {{}}\n  b: {{}}\n")
    return load_economy(str(path))


async def _order_s(cluster: EmulatedCluster, item: str, n: int) -> list[float]:
    async with open_client(cluster.entry(item), "http") as client:
        await client.produce(item, 1, 16)   # warm-up: connections, first-call costs
        return [(await client.produce(item, UNITS, 16)).latency_s for _ in range(n)]


async def _together_s(cluster: EmulatedCluster, n: int) -> float:
    """Median order time of a and b ordered at the same time."""
    times = await asyncio.gather(_order_s(cluster, "a", n), _order_s(cluster, "b", n))
    return statistics.median(times[0] + times[1])


async def test_cpu_work_takes_ten_times_longer_on_a_tenth_of_the_cpu(
        tmp_path: Path, cgroup_cpu: Path) -> None:
    spec = ClusterSpec(nodes=2, economy=_economy(tmp_path), prometheus=False,
                       node_cpu_m={"node-1": 100, "node-2": 1000}, cpu_scale=1.0,
                       cgroup_root=cgroup_cpu)
    cluster = await EmulatedCluster.start(spec, {"a-0": "node-1", "b-0": "node-2"})
    try:
        assert cluster.capacity is not None and cluster.capacity.enforced, cluster.capacity
        assert cluster.capacity.quota_m == {"node-1": 100.0, "node-2": 1000.0}
        small = statistics.median(await _order_s(cluster, "a", 3))
        large = statistics.median(await _order_s(cluster, "b", 5))
        # A relayout moves the processes between groups without a restart.
        pids = {p.name: p.pid for p in cluster.pods}
        await cluster.relayout({"a-0": "node-2", "b-0": "node-1"})
        swapped_large = statistics.median(await _order_s(cluster, "a", 5))
        swapped_small = statistics.median(await _order_s(cluster, "b", 3))
        assert {p.name: p.pid for p in cluster.pods} == pids
        group = Path(cluster.capacity.path)
    finally:
        await cluster.stop()
    assert not group.exists()   # the cluster's groups go with it
    # 100 ms of CPU at 10 ms per 100 ms period: about a second.
    assert small > 0.8, small
    assert 5 < small / large < 20, (small, large)
    assert 5 < swapped_small / swapped_large < 20, (swapped_small, swapped_large)


async def test_two_busy_pods_on_one_capped_node_take_twice_as_long(
        tmp_path: Path, cgroup_cpu: Path) -> None:
    spec = ClusterSpec(nodes=2, economy=_economy(tmp_path), prometheus=False,
                       node_cpu_m=250, cpu_scale=1.0, cgroup_root=cgroup_cpu)
    cluster = await EmulatedCluster.start(spec, {"a-0": "node-1", "b-0": "node-1"})
    try:
        assert cluster.capacity is not None and cluster.capacity.enforced, cluster.capacity
        together = await _together_s(cluster, 4)
        await cluster.relayout({"b-0": "node-2"})
        apart = await _together_s(cluster, 4)
    finally:
        await cluster.stop()
    assert 1.5 < together / apart < 3.0, (together, apart)
