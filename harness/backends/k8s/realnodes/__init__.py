"""A real-node Kubernetes cluster on this machine: the built control plane plus N nodes,
each a network namespace with its own containerd, kubelet and kube-proxy, joined by a
bridge, pods networked by the CNI bridge plugin, DNS by CoreDNS, metrics by Prometheus.

Public surface: `RealNodeCluster` (start / attach / stop / leftovers), `RealNodesError`,
`host_requirements`, `plan_cluster` / `ClusterPlan` (names and addresses), `PAUSE_IMAGE`.
"""

from harness.backends.k8s.realnodes.cluster import (
    CONTEXT_PREFIX,
    RealNodeCluster,
    RealNodesError,
    host_requirements,
    node_binaries,
)
from harness.backends.k8s.realnodes.configs import PAUSE_IMAGE
from harness.backends.k8s.realnodes.plan import ClusterPlan, NodePlan, plan_cluster

__all__ = [
    "CONTEXT_PREFIX",
    "PAUSE_IMAGE",
    "ClusterPlan",
    "NodePlan",
    "RealNodeCluster",
    "RealNodesError",
    "host_requirements",
    "node_binaries",
    "plan_cluster",
]
