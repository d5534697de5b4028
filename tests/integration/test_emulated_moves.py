"""Moving running pods (both strategies) and degrading a node's links, under load.

Real processes: a two-pod chain (grain -> flour) on an emulated cluster, open-loop
orders for flour running while its pods move; every order is accounted for, the new
pods serve on their new nodes, the old processes are gone, nothing leaks.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from harness.backends.base import MoveResult, MovesPods
from harness.backends.emulated import ClusterSpec, EmulatedCluster
from harness.backends.emulated.procs import port_in_use
from harness.backends.pids import pid_alive
from order_app.openloop import OpenLoopReport, run_open_loop
from results.links import LinkProfile
from settlers.client import open_client
from settlers.economy import load_economy
from settlers.wire import WireProtocol

pytestmark = pytest.mark.slow

CHAIN = load_economy().subset(["flour"])   # grain -> flour: two pods
RATE = 20.0                                # orders/s: modest, so make-before-break loses none
GRACE_S = 10.0


async def _wait_until(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def _bytes(before: pd.DataFrame, after: pd.DataFrame) -> dict[tuple[str, str], int]:
    """flour -> grain bytes per (src_node, dst_node) sent between two snapshots."""
    def per_pair(df: pd.DataFrame) -> pd.Series:
        return df[df.source_workload == "flour"].groupby(["src_node", "dst_node"])["bytes"].sum()
    diff = per_pair(after).sub(per_pair(before), fill_value=0)
    return {k: int(v) for k, v in diff.items() if v > 0}


async def _under_load(cluster: EmulatedCluster,
                      moves: list[tuple[str, str]], make_before_break: bool
                      ) -> tuple[OpenLoopReport, list[MoveResult]]:
    """Open-loop orders for flour while ``moves`` run one after the other; the load
    starts before the first move and goes on for 20 orders after each."""
    launched = 0

    def count() -> None:
        nonlocal launched
        launched += 1

    stop = asyncio.Event()
    results = []
    async with open_client(cluster.entry("flour"), cluster.spec.protocol, timeout=20) as client:
        load = asyncio.create_task(run_open_loop(
            client, "flour", size=4096, rps=RATE, duration_s=600, stop=stop,
            on_launch=count, timeout=20))
        await _wait_until(lambda: launched >= 10)
        for pod, node in moves:
            results.append(await cluster.move(pod, node, make_before_break=make_before_break,
                                              grace_s=GRACE_S))
            after = launched
            await _wait_until(lambda: launched >= after + 20)   # noqa: B023 (awaited here)
        stop.set()
        report = await load
    return report, results


@pytest.mark.parametrize(("make_before_break", "protocol"),
                         [(True, "http"), (False, "http"), (True, "grpc")],
                         ids=["mbb-http", "evict-http", "mbb-grpc"])
async def test_moving_pods_under_load(make_before_break: bool, protocol: WireProtocol,
                                      caplog: pytest.LogCaptureFixture) -> None:
    spec = ClusterSpec(nodes=2, link=LinkProfile(0.1, 1000.0), economy=CHAIN, protocol=protocol,
                       prometheus=False)
    cluster = await EmulatedCluster.start(spec, {"grain-0": "node-1", "flour-0": "node-1"})
    try:
        assert isinstance(cluster, MovesPods)
        old_pids = {p.name: p.pid for p in cluster.pods}
        before = cluster.traffic_snapshot()
        # grain moves away from flour (its caller's pooled connections must follow), then
        # flour joins it (the entry service: the order app's connections must follow).
        report, results = await _under_load(
            cluster, [("grain-0", "node-2"), ("flour-0", "node-2")], make_before_break)
        middle = cluster.traffic_snapshot()
        async with open_client(cluster.entry("flour"), spec.protocol) as client:
            traces = [await client.produce("flour", 1, 64) for _ in range(3)]
        after = cluster.traffic_snapshot()
        pids, ports = cluster.pids(), cluster.ports()
        status = cluster.pod_status()
        placement = dict(cluster.placement)
    finally:
        await cluster.stop()

    strategy = "make-before-break" if make_before_break else "evict"
    for result, (pod, new, node) in zip(results, [("grain-0", "grain-1", "node-2"),
                                                   ("flour-0", "flour-1", "node-2")],
                                        strict=True):
        assert result.ok, result.error
        assert (result.pod, result.new_pod, result.src_node, result.dst_node,
                result.strategy) == (pod, new, "node-1", node, strategy)
        assert result.ready is not None
        if make_before_break:
            assert result.started <= result.ready <= result.done
        else:   # the old pod went first
            assert result.started <= result.done <= result.ready
        assert not pid_alive(old_pids[pod])
        if make_before_break:   # the old pod drained and exited; it was not killed at the end
            assert result.done - result.ready < GRACE_S, result
    # Every order was answered or failed visibly; none dropped, none lost.
    assert report.dropped == 0
    assert report.sent == report.scheduled > 40
    assert report.ok + report.errors == report.sent, report.error_messages
    if make_before_break:
        assert report.errors == 0, report.error_messages
    else:   # the service had no pod for a moment: failures are connection errors
        assert all(m.split(":")[0] in ("connect", "broken", "upstream")
                   for m in report.error_messages), report.error_messages
    assert placement == {"grain-1": "node-2", "flour-1": "node-2"}
    # A pod stopped on purpose is not a crash.
    assert not [r.getMessage() for r in caplog.records if "exited with code" in r.getMessage()]
    assert status == {"grain-1": "running", "flour-1": "running"}
    assert {(h.item, h.pod) for t in traces for h in t.trace} == {
        ("flour", "flour-1"), ("grain", "grain-1")}
    # The moves' bytes: flour on node-1 called grain on node-2 in between; now both
    # sit on node-2. The old pods' bytes stay counted under their old nodes.
    moved = _bytes(before, middle)
    assert ("node-1", "node-1") in moved and ("node-1", "node-2") in moved, moved
    assert _bytes(middle, after).keys() == {("node-2", "node-2")}
    assert not any(pid_alive(pid) for pid in pids)
    assert not any(port_in_use(port) for port in ports)


async def test_move_refuses_bad_arguments_and_names_pods_in_turn() -> None:
    spec = ClusterSpec(nodes=2, economy=CHAIN, prometheus=False)
    async with await EmulatedCluster.start(spec, {"grain-0": "node-1", "flour-0": "node-1"}
                                           ) as cluster:
        with pytest.raises(ValueError, match="no such running pod"):
            await cluster.move("bread-0", "node-2")
        with pytest.raises(ValueError, match="unknown node 'node-9'"):
            await cluster.move("grain-0", "node-9")
        with pytest.raises(ValueError, match="is taken"):
            await cluster.move("grain-0", "node-2", new_pod="flour-0")
        first = await cluster.move("grain-0", "node-2", new_pod="grain-x")
        second = await cluster.move("grain-x", "node-1")
        assert (first.ok, second.ok) == (True, True), (first.error, second.error)
        assert second.new_pod == "grain-1"
        assert cluster.placement == {"grain-1": "node-1", "flour-0": "node-1"}
        async with open_client(cluster.entry("flour"), "http") as client:
            result = await client.produce("flour", 1, 16)
        assert [h.pod for h in result.trace] == ["flour-0", "grain-1"]


async def test_a_moved_pod_runs_in_its_new_nodes_cpu_group(cgroup_cpu: Path) -> None:
    spec = ClusterSpec(nodes=2, economy=CHAIN, prometheus=False, node_cpu_m=1000,
                       cgroup_root=cgroup_cpu)
    async with await EmulatedCluster.start(spec, {"grain-0": "node-1", "flour-0": "node-1"}
                                           ) as cluster:
        assert cluster.capacity is not None and cluster.capacity.enforced, cluster.capacity
        result = await cluster.move("grain-0", "node-2")
        assert result.ok, result.error
        pid = next(p.pid for p in cluster.pods if p.name == "grain-1")
        group = Path(cluster.capacity.path)
        assert str(pid) in (group / "node-2" / "cgroup.procs").read_text().split()
        assert str(pid) not in (group / "node-1" / "cgroup.procs").read_text().split()


async def _median_ms(cluster: EmulatedCluster, n: int = 7) -> float:
    async with open_client(cluster.entry("flour"), cluster.spec.protocol) as client:
        samples = [(await client.produce("flour", 1, 16)).latency_s * 1000 for _ in range(n + 2)]
    return statistics.median(samples[2:])   # the first calls open the connections


async def test_degrade_slows_every_link_of_the_node() -> None:
    spec = ClusterSpec(nodes=3, link=LinkProfile(0.1, 1000.0), economy=CHAIN, prometheus=False)
    async with await EmulatedCluster.start(spec, {"grain-0": "node-2", "flour-0": "node-1"}
                                           ) as cluster:
        with pytest.raises(ValueError, match="unknown node"):
            await cluster.degrade("node-9", latency_ms=5)
        with pytest.raises(ValueError, match="latency"):
            await cluster.degrade("node-2", latency_ms=-1)
        fast = await _median_ms(cluster)
        await cluster.degrade("node-3", latency_ms=30.0)   # not on the path: no change
        untouched = await _median_ms(cluster)
        await cluster.degrade("node-2", latency_ms=30.0)
        slow = await _median_ms(cluster)
    # One request and one response cross node-1 <-> node-2: 2 x 30 ms added.
    assert slow - fast > 2 * 30.0 * 0.9, (fast, slow)
    assert untouched < fast + 30.0, (fast, untouched)
