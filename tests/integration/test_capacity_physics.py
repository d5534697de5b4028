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
import json
import os
import signal
import statistics
import subprocess
import sys
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


def _harness(*args: str, run_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from harness.cli import main; main()",
                           "cluster", *args, "--run-dir", str(run_dir)],
                          capture_output=True, text=True, timeout=300)


def test_cluster_up_status_down_with_capacity_and_cleanup_after_a_crash(
        tmp_path: Path, cgroup_cpu: Path) -> None:
    economy = tmp_path / "work.yaml"
    economy.write_text(_economy(tmp_path).to_yaml())
    run_dir = tmp_path / "run"
    up = ["up", "--nodes", "2", "--economy", str(economy), "--placement", "spread",
          "--no-prometheus", "--node-cpu", "500m", "--cpu-scale", "0.5"]
    first = _harness(*up, run_dir=run_dir)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "enforced with cgroup" in first.stdout
    state = json.loads((run_dir / "cluster.json").read_text())
    crashed_group = Path(state["capacity"]["path"])
    assert crashed_group.is_dir()
    status = _harness("status", "--json", run_dir=run_dir)
    assert status.returncode == 0, status.stdout + status.stderr
    use = json.loads(status.stdout)["node_use"]
    assert {n: (u["capacity_m"], u["quota_m"], len(u["pods"])) for n, u in use.items()} == {
        "node-1": (500, 250.0, 1), "node-2": (500, 250.0, 1)}
    table = _harness("status", run_dir=run_dir)
    assert "node capacity (CPU)" in table.stdout and "250m" in table.stdout
    # The supervisor dies without cleaning up: its groups stay until the next cluster.
    os.kill(state["supervisor_pid"], signal.SIGKILL)
    _harness("down", run_dir=run_dir)
    second = _harness(*up, run_dir=run_dir)
    try:
        assert second.returncode == 0, second.stdout + second.stderr
        assert not crashed_group.exists()
        group = Path(json.loads((run_dir / "cluster.json").read_text())["capacity"]["path"])
        assert group.is_dir()
    finally:
        down = _harness("down", run_dir=run_dir)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not group.exists()


async def test_without_a_usable_controller_the_cluster_runs_and_says_why(
        tmp_path: Path) -> None:
    spec = ClusterSpec(nodes=2, economy=_economy(tmp_path), prometheus=False,
                       node_cpu_m=100, cgroup_root=tmp_path / "no-cgroups")
    async with await EmulatedCluster.start(spec, {"a-0": "node-1", "b-0": "node-1"}) as cluster:
        assert cluster.capacity is not None and not cluster.capacity.enforced
        assert cluster.describe()["capacity"]["reason"] == (
            f"no cgroup file system at {tmp_path / 'no-cgroups'}")
        await cluster.relayout({"b-0": "node-2"})   # still works, nothing to move
        assert len(await _order_s(cluster, "a", 1)) == 1   # orders are served, uncapped
