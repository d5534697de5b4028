"""Real pods: the real-node cluster (containerd, kubelet and kube-proxy per node, in
network namespaces on this machine), the chart installed into it by the real helm, an
order sent through it, and `down` leaving nothing behind.

Needs root, Debian's containerd/runc/CNI plugins (`tools/setup --nodes`), kubelet,
kube-proxy and CoreDNS from `tools/k8s/build`, and the images from `tools/image/build`;
skipped without them on a developer machine, failed in CI (CI=true).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from typing import NoReturn

import pytest

from harness.backends.k8s import K8sBinaries
from harness.backends.k8s.realnodes import RealNodeCluster, RealNodesError, host_requirements
from harness.backends.k8s.realnodes.cluster import node_binaries
from harness.backends.kubernetes import Helm
from harness.nodes_cmd import default_images

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1500)]

ZONES = {"node-1": {"topology.kubernetes.io/zone": "zone-a"},
         "node-2": {"topology.kubernetes.io/zone": "zone-b"}}


def _iptables() -> str:
    """The host's rules without packet counters (which change by themselves)."""
    out = subprocess.run(["iptables-save"], capture_output=True, text=True, check=False).stdout
    return "\n".join(line for line in out.splitlines()
                     if not line.startswith(("#", ":")) and line.strip())


@pytest.fixture(scope="module")
def cluster(k8s_binaries: K8sBinaries,
            missing_tool: Callable[[str], NoReturn]) -> Iterator[RealNodeCluster]:
    problems = host_requirements()
    if problems:
        missing_tool("real-node cluster: " + "; ".join(problems))
    try:
        node_binaries(k8s_binaries.dir)
    except RealNodesError as e:
        missing_tool(str(e))
    images = default_images()
    if len(images) < 2:
        missing_tool("no settlers-testbed/pause image archives: run tools/image/build")
    before = _iptables()
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    c = RealNodeCluster.start(name, list(ZONES), images=images, labels=ZONES,
                              rate_mbps=lambda a, b: 200.0, timeout=600)
    try:
        yield c
    finally:
        c.stop()
        assert c.leftovers() == []
        assert _iptables() == before, "the host's iptables rules changed"


def _kubectl(c: RealNodeCluster, bins: K8sBinaries, *args: str) -> str:
    proc = subprocess.run([str(bins.kubectl), "--kubeconfig", str(c.kubeconfig), *args],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_nodes_are_real_ready_and_labelled(cluster: RealNodeCluster,
                                           k8s_binaries: K8sBinaries) -> None:
    nodes = json.loads(_kubectl(cluster, k8s_binaries, "get", "nodes", "-o", "json"))["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == sorted(ZONES)
    for n in nodes:
        info = n["status"]["nodeInfo"]
        assert info["containerRuntimeVersion"].startswith("containerd://")
        assert info["kubeletVersion"] == "v1.36.3"
        labels = n["metadata"]["labels"]
        assert labels["topology.kubernetes.io/zone"] == ZONES[n["metadata"]["name"]][
            "topology.kubernetes.io/zone"]
        assert "kwok.x-k8s.io/node" not in n["metadata"].get("annotations", {})


def test_chart_installs_answers_orders_and_passes_helm_test(
        cluster: RealNodeCluster, k8s_binaries: K8sBinaries) -> None:
    helm = Helm(binary=k8s_binaries.helm, kubeconfig=cluster.kubeconfig, timeout_s=900)
    ns, release = "e2e-chart", "tb"
    _kubectl(cluster, k8s_binaries, "create", "namespace", ns)
    import yaml

    values = yaml.safe_load(cluster.values_file.read_text())
    helm.upgrade_install(release, ns, [values], wait=True, timeout="10m")
    pods = json.loads(_kubectl(cluster, k8s_binaries, "-n", ns, "get", "pods", "-o",
                               "json"))["items"]
    producers = [p for p in pods
                 if p["metadata"]["labels"].get("app.kubernetes.io/component") == "producer"]
    assert producers and all(p["status"]["phase"] == "Running" for p in producers)
    # Real containers on real nodes, on both nodes' pod networks.
    assert {p["spec"]["nodeName"] for p in producers} <= set(ZONES)
    assert all(p["status"]["containerStatuses"][0]["containerID"].startswith("containerd://")
               for p in producers)
    # An order from this host through a producer's pod address (routes to pod CIDRs):
    # bread needs flour, water, ... so it crosses Services, DNS and kube-proxy.
    bread = next(p for p in producers if p["metadata"]["labels"]["app"] == "bread")
    proc = subprocess.run(["order-app", "sweep", "--target", f"{bread['status']['podIP']}:8080",
                           "--item", "bread", "--sizes", "16", "--repeat", "2", "--warmup", "0"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = helm.test(release, ns, timeout="5m")
    assert "Phase:          Succeeded" in out or "Succeeded" in out, out
