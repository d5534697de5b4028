"""Moves through the API on a kwok control plane (``KwokPlacer`` as ``MovesThroughApi``):
one deployment that stays, a pod evicted and its replacement bound to the chosen node,
cordon, and nothing left after undeploy."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from harness.backends.base import MovesThroughApi
from harness.backends.k8s import KwokCluster
from harness.backends.k8s.moves import HELD_SCHEDULER
from harness.backends.k8s.placements import economy_deployments
from harness.backends.k8s.workloads import create_deployments, wait_bound
from harness.backends.kwok import KwokPlacer
from settlers.economy import Economy

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# bread has two replicas: moving one must leave the other where it is.
ECONOMY = Economy.from_mapping({"items": {
    "flour": {},
    "bread": {"inputs": {"flour": 1}, "replicas": 2},
}})


def _live_pods(cluster: KwokCluster) -> dict[str, Any]:
    """API name -> pod of the pods not being deleted, in the placer's namespace."""
    return {p.metadata.name: p for p in cluster.core_v1().list_pod_for_all_namespaces().items
            if p.metadata.namespace.startswith("live-") and p.metadata.deletion_timestamp is None}


def _by_creation(pods: dict[str, Any], app: str) -> list[str]:
    group = [p for p in pods.values() if p.metadata.labels["app"] == app]
    group.sort(key=lambda p: (p.metadata.creation_timestamp, p.metadata.name))
    return [p.metadata.name for p in group]


def _scheduler_processes() -> list[bytes]:
    """Command lines of our scheduler processes: children of this process, started by
    any of its threads (the placer starts them in worker threads)."""
    me = os.getpid()
    kids = [k for t in Path(f"/proc/{me}/task").iterdir()
            for k in (t / "children").read_text().split()]
    cmdlines = [Path(f"/proc/{k}/cmdline").read_bytes() for k in kids
                if Path(f"/proc/{k}/cmdline").exists()]
    return [c for c in cmdlines if b"schedulers.cli" in c or b"kube-scheduler" in c]


def _deployments(cluster: KwokCluster) -> list[Any]:
    return list(cluster.apps_v1().list_deployment_for_all_namespaces().items)


async def _move_and_check(placer: KwokPlacer, cluster: KwokCluster, pod: str,
                          expect_name: str) -> None:
    """Move ``pod`` to a node it is not on; the API agrees with what move() returned."""
    before = _live_pods(cluster)
    item = pod.rpartition("-")[0]
    old_api = placer.api_names[pod]
    src = before[old_api].spec.node_name
    dst = next(n for n in cluster.node_names if n != src)

    new_pod, node = await placer.move(pod, dst)

    assert (new_pod, node) == (expect_name, dst)
    after = _live_pods(cluster)
    assert old_api not in after  # the evicted pod is gone, not only terminating
    added = set(after) - set(before)
    assert len(added) == 1, added
    (new_api,) = added
    assert placer.api_names[new_pod] == new_api and pod not in placer.api_names
    assert after[new_api].spec.node_name == dst
    assert after[new_api].metadata.labels["app"] == item
    # Every other pod is where it was: one pod moved, not the whole Deployment.
    assert {n: p.spec.node_name for n, p in after.items() if n != new_api} == {
        n: p.spec.node_name for n, p in before.items() if n != old_api}
    # The Deployment is as before the move: resumed, one ReplicaSet (no rollout), whose
    # template is back to the scheduler's name.
    apps = cluster.apps_v1()
    ns = after[new_api].metadata.namespace
    dep = apps.read_namespaced_deployment(item, ns)
    assert not dep.spec.paused
    sets = [r for r in apps.list_namespaced_replica_set(ns).items
            if r.metadata.labels["app"] == item]
    assert len(sets) == 1
    assert (sets[0].spec.template.spec.scheduler_name
            == dep.spec.template.spec.scheduler_name != HELD_SCHEDULER)


async def test_a_pod_moves_through_the_api(k8s_binaries: object, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    workdir = tmp_path / "kwok"
    monkeypatch.setenv("SETTLERS_KWOK_WORKDIR", str(workdir))
    placer = KwokPlacer(ECONOMY, 3)
    assert isinstance(placer, MovesThroughApi)
    try:
        placement = await placer.deploy("kube_default", traffic=None, seed=1)
        assert sorted(placement.assignments) == ["bread-0", "bread-1", "flour-0"]
        (name,) = KwokCluster.list_names(workdir)
        cluster = KwokCluster.attach(name, workdir)
        pods = _live_pods(cluster)
        # The placement names the API's pods in creation order, per item.
        assert placement.assignments == {
            f"{app}-{i}": pods[api].spec.node_name
            for app in ("bread", "flour") for i, api in enumerate(_by_creation(pods, app))}

        # bread-1 moves and comes back as bread-2; moved again, it is bread-3.
        await _move_and_check(placer, cluster, "bread-1", "bread-2")
        await _move_and_check(placer, cluster, "bread-2", "bread-3")
        with pytest.raises(KeyError, match="bread-1"):
            await placer.move("bread-1", "node-1")

        await placer.cordon("node-2")
        assert cluster.core_v1().read_node("node-2").spec.unschedulable is True
        await placer.cordon("node-2", on=False)
        assert not cluster.core_v1().read_node("node-2").spec.unschedulable

        await placer.undeploy()
        assert _deployments(cluster) == []
        assert _live_pods(cluster) == {}

        # A scheduler with a process on this machine (firmament's binder): it keeps
        # binding between deploy and undeploy, and a move under it works the same way.
        assert _scheduler_processes() == []
        placement = await placer.deploy("firmament", traffic=None, seed=1)
        assert len(placement.assignments) == 3
        assert len(_scheduler_processes()) == 1
        ns = next(p.metadata.namespace for p in _live_pods(cluster).values())
        sched = _deployments(cluster)[0].spec.template.spec.scheduler_name
        extra = economy_deployments(Economy.from_mapping({"items": {"salt": {}}}))
        create_deployments(cluster, ns, extra, sched)
        wait_bound(cluster, ns, 4, timeout=60)
        new_pod, node = await placer.move("flour-0", "node-3" if placement.assignments[
            "flour-0"] != "node-3" else "node-1")
        assert new_pod == "flour-1"
        assert _live_pods(cluster)[placer.api_names[new_pod]].spec.node_name == node
        await placer.undeploy()
        assert _deployments(cluster) == []
        assert _scheduler_processes() == []
    finally:
        await placer.close()
    assert KwokCluster.list_names(workdir) == []
