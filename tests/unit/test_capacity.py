"""Node capacity groups (harness.backends.emulated.capacity) on a fake cgroup tree.

The code takes the cgroup root as a parameter; here it is a directory in tmp_path
laid out like the kernel's (v1: ``cpu/cpu.cfs_quota_us``; v2: ``cgroup.controllers``).
The real kernel is exercised by tests/integration/test_capacity_physics.py.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness.backends.emulated import capacity
from harness.backends.emulated.capacity import (
    PARENT,
    NodeGroups,
    clean_stale,
    detect,
    fit_scale,
    process_cpu_seconds,
)

# A pid that cannot be alive (above the kernel's pid_max limit of 2**22).
DEAD = 999_999_999


def _v1(root: Path) -> Path:
    (root / "cpu").mkdir(parents=True)
    for f in ("cpu.cfs_quota_us", "cpu.cfs_period_us", "cgroup.procs"):
        (root / "cpu" / f).write_text("")
    return root


def _v2(root: Path, controllers: str = "cpuset cpu io memory pids") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text(controllers + "\n")
    (root / "cgroup.subtree_control").write_text("")
    (root / "cgroup.procs").write_text("")
    return root


def _groups(root: Path, caps: dict[str, int], **kw: object) -> NodeGroups:
    return NodeGroups.create(caps, root=root, rmdir=shutil.rmtree, **kw)  # type: ignore[arg-type]


def test_detect_finds_v1_v2_or_says_why(tmp_path: Path) -> None:
    assert detect(_v1(tmp_path / "a")) == capacity.Controller("v1", tmp_path / "a" / "cpu")
    assert detect(_v2(tmp_path / "b")) == capacity.Controller("v2", tmp_path / "b")
    assert "has no cpu controller (controllers: memory pids)" in str(
        detect(_v2(tmp_path / "c", "memory pids")))
    assert str(detect(tmp_path / "none")) == f"no cgroup file system at {tmp_path / 'none'}"
    (tmp_path / "empty").mkdir()
    assert "no cpu controller under" in str(detect(tmp_path / "empty"))


def test_the_scale_fits_the_nodes_into_the_cores_less_the_reserve() -> None:
    # 5 nodes of 4 CPU on 2 cores: 1.5 cores for 20 CPUs.
    assert fit_scale(dict.fromkeys("abcde", 4000), cores=2) == pytest.approx(0.075)
    assert fit_scale({"a": 100, "b": 1000}, cores=2) == 1.0   # never more than the capacity
    assert fit_scale({"a": 4000}, cores=8, reserve_m=0) == 1.0


def test_v1_groups_get_quotas_and_pods_move_on_relayout(tmp_path: Path) -> None:
    root = _v1(tmp_path)
    g = _groups(root, {"node-1": 100, "node-2": 1000}, scale=0.5, cluster_id="42-x")
    assert g.status.enforced and g.status.version == "v1"
    n1 = root / "cpu" / PARENT / "42-x" / "node-1"
    assert (n1 / "cpu.cfs_quota_us").read_text() == "5000"     # 50 machine millicores
    assert (n1 / "cpu.cfs_period_us").read_text() == "100000"
    assert g.status.quota_m == {"node-1": 50.0, "node-2": 500.0}
    assert "enforced with cgroup v1 CPU quota at scale 0.5" in g.status.line()

    me = os.getpid()   # a live pid; the fake cgroup.procs only records the write
    g.place({me: "node-1"})
    assert (n1 / "cgroup.procs").read_text() == str(me)
    g.place({me: "node-2"})
    assert (root / "cpu" / PARENT / "42-x" / "node-2" / "cgroup.procs").read_text() == str(me)
    (n1 / "cgroup.procs").write_text("")
    g.place({me: "node-2"})   # already there: no write
    assert (n1 / "cgroup.procs").read_text() == ""

    g.remove()
    assert not (root / "cpu" / PARENT / "42-x").exists()


def test_v2_enables_the_controller_down_the_tree_and_writes_cpu_max(tmp_path: Path) -> None:
    root = _v2(tmp_path)
    g = _groups(root, {"node-1": 2000}, scale=0.1, cluster_id="7-y")
    assert g.status.enforced and g.status.version == "v2"
    assert (root / "cgroup.subtree_control").read_text() == "+cpu"
    assert (root / PARENT / "cgroup.subtree_control").read_text() == "+cpu"
    assert (root / PARENT / "7-y" / "node-1" / "cpu.max").read_text() == "20000 100000"
    (root / PARENT / "7-y" / "node-1" / "cpu.stat").write_text(
        "usage_usec 2500000\nnr_periods 10\nnr_throttled 4\n")
    assert g.usage() == {"node-1": {"usage_s": 2.5, "periods": 10.0, "throttled": 4.0}}


def test_a_tiny_capacity_gets_the_kernels_smallest_quota(tmp_path: Path) -> None:
    g = _groups(_v1(tmp_path), {"node-1": 1}, scale=0.01, cluster_id="1-z")
    assert g.status.quota_m == {"node-1": 10.0}   # 1 ms per 100 ms period


def test_without_a_controller_nothing_is_enforced_and_the_status_says_why(
        tmp_path: Path) -> None:
    g = _groups(tmp_path / "nothing", {"node-1": 1000})
    assert not g.status.enforced
    g.place({os.getpid(): "node-1"})   # a no-op, not an error
    g.remove()
    line = g.status.line()
    assert line.startswith("node capacity 1000m per node is NOT enforced")
    assert f"no cgroup file system at {tmp_path / 'nothing'}" in line


def test_a_refused_write_disables_capacity_and_removes_the_groups(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _v1(tmp_path)
    real = capacity._write

    def refuse(path: Path, text: str) -> None:
        if path.name == "cpu.cfs_quota_us":
            raise PermissionError(13, "Permission denied", str(path))
        real(path, text)

    monkeypatch.setattr(capacity, "_write", refuse)
    g = _groups(root, {"node-1": 1000}, cluster_id="5-w")
    assert not g.status.enforced and g.status.quota_m == {}
    assert g.status.reason.startswith("no permission to write ")
    assert "run as root" in g.status.reason
    assert not (root / "cpu" / PARENT / "5-w").exists()


def test_a_move_to_an_unknown_node_disables_capacity(tmp_path: Path) -> None:
    g = _groups(_v1(tmp_path), {"node-1": 1000}, cluster_id="6-v")
    g.place({os.getpid(): "node-9"})
    assert not g.status.enforced and g.status.reason == "no group for node 'node-9'"


def test_groups_of_dead_clusters_are_cleaned_at_start(tmp_path: Path) -> None:
    root = _v1(tmp_path)
    parent = root / "cpu" / PARENT
    for cid in (f"{DEAD}-old", f"{os.getpid()}-live"):
        (parent / cid / "node-1").mkdir(parents=True)
    (parent / f"{DEAD}-old" / "node-1" / "cgroup.procs").write_text(f"{DEAD}\n")
    assert clean_stale(root, rmdir=shutil.rmtree) == [f"{DEAD}-old"]
    assert sorted(p.name for p in parent.iterdir()) == [f"{os.getpid()}-live"]
    # A leftover process is moved back to the root before its group goes.
    assert (root / "cpu" / "cgroup.procs").read_text() == str(DEAD)
    # ... and a new cluster cleans too.
    (parent / f"{DEAD}-again").mkdir()
    _groups(root, {"node-1": 1000}, cluster_id="1-new")
    assert not (parent / f"{DEAD}-again").exists()


def test_process_cpu_seconds_counts_live_processes_and_skips_gone_ones() -> None:
    mine = process_cpu_seconds([os.getpid()])
    assert mine > 0
    assert process_cpu_seconds([os.getpid(), DEAD]) >= mine


def test_weights_follow_capacity_and_the_testbed_outweighs_other_work(tmp_path: Path) -> None:
    root = _v1(tmp_path)
    _groups(root, {"node-1": 500, "node-2": 2000}, scale=1.0, cluster_id="3-u")
    base = root / "cpu" / PARENT
    assert (base / "3-u" / "node-1" / "cpu.shares").read_text() == "512"
    assert (base / "3-u" / "node-2" / "cpu.shares").read_text() == "2048"
    assert (base / "cpu.shares").read_text() == str(capacity.PARENT_WEIGHT * 1024)
    root2 = _v2(tmp_path / "v2")
    _groups(root2, {"node-1": 500}, scale=1.0, cluster_id="3-u")
    assert (root2 / PARENT / "3-u" / "node-1" / "cpu.weight").read_text() == "50"
    assert (root2 / PARENT / "cpu.weight").read_text() == str(capacity.PARENT_WEIGHT * 100)


def test_a_topology_nodes_own_cpu_wins_over_node_cpu_in_models_and_quota() -> None:
    from harness.backends.emulated import ClusterSpec
    from harness.backends.layoutspace import LayoutSpace
    from results.topology import resolve_topology
    from settlers.economy import load_economy

    topo = resolve_topology("edge-cloud", nodes=5)
    own = {n.name: n.cpu for n in topo.nodes}
    spec = ClusterSpec(topology=topo, node_cpu_m=3000)
    caps = spec.capacities(topo.node_names)
    assert caps is not None
    space = LayoutSpace.for_topology(load_economy(), 5, topo, 3000)
    assert {n.name: n.cpu_m for n in space.nodes} == caps
    assert {n for n, c in caps.items() if c != 3000} == {n for n, c in own.items() if c}
    assert ClusterSpec(topology=topo).capacities(topo.node_names) is None   # off by default
