"""The real Diktyo plugins (kube-scheduler-diktyo from tools/k8s/build) on a kwok control
plane, started by the one call `plugin_scheduler`: the snapshot's CRDs accept the
harness's AppGroup and NetworkTopology (status included), and NetworkOverhead keeps a
pod in its dependency's zone when the other zone costs more than maxNetworkCost, as the
model says it does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.backends.k8s import K8sBinaries, KwokCluster
from harness.backends.k8s.binaries import bin_dir
from harness.backends.k8s.pluginsched import plugin_scheduler
from harness.backends.k8s.workloads import DeploymentSpec, create_deployments, wait_bound
from results.topology import resolve_topology
from schedulers import get_policy
from schedulers.diktyo import manifests
from schedulers.model import Pod
from schedulers.registry import policy_spec
from settlers.economy import Economy

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Two zones of one region; crossing them is a `wan` hop (10 ms -> cost 10), above the
# default maxNetworkCost (5): NetworkOverhead's filter rejects the other zone.
TOPOLOGY = {
    "name": "two-zones",
    "nodes": [{"name": f"node-{i}", "labels": {"topology.kubernetes.io/region": "r1",
                                                "topology.kubernetes.io/zone": zone}}
              for i, zone in ((1, "za"), (2, "za"), (3, "zb"), (4, "zb"))],
    "links": {"same-zone": "lan", "cross-zone": "wan"},
}
ECONOMY = Economy.from_mapping({"name": "pair", "items": {"db": {}, "web": {"inputs": {"db": 1}}}})
WEB_REPLICAS = 4


@pytest.fixture
def diktyo_cluster(k8s_binaries: K8sBinaries, tmp_path: Path) -> Iterator[KwokCluster]:
    found = policy_spec("diktyo").kubernetes
    assert found is not None and found.binary
    if not (bin_dir() / found.binary).is_file():
        pytest.skip(f"no {found.binary} in {bin_dir()}: tools/k8s/build builds it from the "
                    "scheduler-plugins snapshot (SETTLERS_SCHEDULER_PLUGINS)")
    cluster = KwokCluster.start(topology=resolve_topology(TOPOLOGY), workdir=tmp_path,
                                bins=k8s_binaries)
    with cluster:
        yield cluster


def test_the_real_plugin_keeps_a_pod_in_its_dependencys_zone(
        diktyo_cluster: KwokCluster) -> None:
    from kubernetes import client

    cluster = diktyo_cluster
    topology = resolve_topology(TOPOLOGY)
    found = policy_spec("diktyo").kubernetes
    assert found is not None
    # db already runs on node-1 (zone za) when the scheduler starts.
    ns = "diktyo-e2e"
    core: Any = cluster.core_v1()
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    core.create_namespaced_pod(ns, {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "db-0", "labels": {
            "app": "db", manifests.APPGROUP_LABEL: "pair", manifests.WORKLOAD_LABEL: "db"}},
        "spec": {"nodeName": "node-1",
                 "containers": [{"name": "db", "image": "registry.k8s.io/pause:3.10"}]}})

    with plugin_scheduler("diktyo", kubeconfig=cluster.kubeconfig,
                          api_client=cluster.api_client(), economy=ECONOMY,
                          network=topology.network()) as setup:
        # The CRDs accepted both objects, status included (no controller wrote it).
        custom: Any = client.CustomObjectsApi(cluster.api_client())
        ag = custom.get_namespaced_custom_object(
            "appgroup.diktyo.x-k8s.io", "v1alpha1", manifests.OBJECT_NAMESPACE, "appgroups",
            "pair")
        assert [(t["workload"]["selector"], t["index"])
                for t in ag["status"]["topologyOrder"]] == [("db", 1), ("web", 2)]
        assert ag["spec"]["workloads"][1]["dependencies"][0]["maxNetworkCost"] == 5
        nt = custom.get_namespaced_custom_object(
            "networktopology.diktyo.x-k8s.io", "v1alpha1", manifests.OBJECT_NAMESPACE,
            "networktopologies", manifests.NETWORK_TOPOLOGY_NAME)
        zone_costs = nt["spec"]["weights"][0]["topologyList"][0]
        assert zone_costs["topologyKey"] == "topology.kubernetes.io/zone"
        assert {(o["origin"], c["destination"], c["networkCost"])
                for o in zone_costs["originList"] for c in o["costList"]} \
            == {("za", "zb", 10), ("zb", "za", 10)}
        assert setup.pod_labels["db"] == {manifests.APPGROUP_LABEL: "pair",
                                          manifests.WORKLOAD_LABEL: "db"}

        create_deployments(cluster, ns, [DeploymentSpec("web", replicas=WEB_REPLICAS,
                                                        labels=setup.pod_labels["web"])],
                           found.scheduler_name)
        pods = wait_bound(cluster, ns, WEB_REPLICAS + 1)
    real = {p.metadata.name: p.spec.node_name for p in pods if p.metadata.name != "db-0"}
    # Filter: zone zb is 10 away, more than maxNetworkCost 5: every web pod is in za.
    assert set(real.values()) <= {"node-1", "node-2"}, real

    # The model, given the same cluster, says the same.
    policy = get_policy("diktyo", network=topology.network(), economy=ECONOMY, seed=0)
    web = [Pod(f"web-{i}", "web", cpu_m=100, memory=128 * 2**20) for i in range(WEB_REPLICAS)]
    placed = policy.schedule(web, topology.model_nodes(),
                             running=[(Pod("db-0", "db"), "node-1")])
    assert set(placed.assignments.values()) <= {"node-1", "node-2"}

