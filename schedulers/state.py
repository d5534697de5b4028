"""The cluster state a policy schedules against: what is bound where.

Like kube-scheduler's ``NodeInfo`` it keeps running totals per node so that a
filter or score plugin reads O(1) numbers instead of walking pods:
actual requests (for fit and BalancedAllocation) and *non-zero* requests (for
LeastAllocated, where a container without requests counts as 100m / 200Mi).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from schedulers.model import Node, Pod

__all__ = [
    "DEFAULT_CPU_REQUEST_M",
    "DEFAULT_MEMORY_REQUEST",
    "ClusterState",
    "NodeInfo",
    "nonzero_requests",
]

# pkg/scheduler/util: DefaultMilliCPURequest / DefaultMemoryRequest.
DEFAULT_CPU_REQUEST_M = 100
DEFAULT_MEMORY_REQUEST = 200 * 2**20


def nonzero_requests(pod: Pod) -> tuple[int, int]:
    """The requests LeastAllocated charges: absent requests count as the defaults."""
    return (pod.cpu_m or DEFAULT_CPU_REQUEST_M, pod.memory or DEFAULT_MEMORY_REQUEST)


@dataclass(slots=True)
class NodeInfo:
    node: Node
    index: int
    requested_cpu: int = 0
    requested_memory: int = 0
    nonzero_cpu: int = 0
    nonzero_memory: int = 0
    pods: list[Pod] = field(default_factory=list)
    workload_counts: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.node.name

    def free_cpu(self) -> int:
        return self.node.cpu_m - self.requested_cpu

    def free_memory(self) -> int:
        return self.node.memory - self.requested_memory

    def free_pods(self) -> int:
        return self.node.max_pods - len(self.pods)

    def fits(self, pod: Pod) -> bool:
        return (len(self.pods) < self.node.max_pods
                and self.requested_cpu + pod.cpu_m <= self.node.cpu_m
                and self.requested_memory + pod.memory <= self.node.memory)


class ClusterState:
    """Nodes plus the pods bound to them; ``bind``/``unbind`` keep every total current."""

    def __init__(self, nodes: Sequence[Node]) -> None:
        names = [n.name for n in nodes]
        if len(set(names)) != len(names):
            raise ValueError("node names must be unique")
        self.infos: list[NodeInfo] = [NodeInfo(node=n, index=i) for i, n in enumerate(nodes)]
        self.by_name: dict[str, NodeInfo] = {ni.name: ni for ni in self.infos}
        self.pod_node: dict[str, str] = {}
        self.workload_totals: dict[str, int] = {}
        # Image -> number of nodes that have it (ImageLocality's "spread").
        self.image_nodes: dict[str, int] = {}
        for n in nodes:
            for image in n.images:
                self.image_nodes[image] = self.image_nodes.get(image, 0) + 1
        # Pods that carry affinity terms: InterPodAffinity must look at them.
        self.pods_with_affinity: int = 0

    @property
    def nodes(self) -> list[Node]:
        return [ni.node for ni in self.infos]

    def bind(self, pod: Pod, node_name: str) -> None:
        if pod.name in self.pod_node:
            raise ValueError(f"pod {pod.name} is already bound to {self.pod_node[pod.name]}")
        ni = self.by_name[node_name]
        cpu, mem = nonzero_requests(pod)
        ni.requested_cpu += pod.cpu_m
        ni.requested_memory += pod.memory
        ni.nonzero_cpu += cpu
        ni.nonzero_memory += mem
        ni.pods.append(pod)
        ni.workload_counts[pod.workload] = ni.workload_counts.get(pod.workload, 0) + 1
        self.workload_totals[pod.workload] = self.workload_totals.get(pod.workload, 0) + 1
        self.pod_node[pod.name] = node_name
        if pod.pod_affinity:
            self.pods_with_affinity += 1

    def unbind(self, pod: Pod) -> str:
        node_name = self.pod_node.pop(pod.name)
        ni = self.by_name[node_name]
        cpu, mem = nonzero_requests(pod)
        ni.requested_cpu -= pod.cpu_m
        ni.requested_memory -= pod.memory
        ni.nonzero_cpu -= cpu
        ni.nonzero_memory -= mem
        ni.pods = [p for p in ni.pods if p.name != pod.name]
        _decrement(ni.workload_counts, pod.workload)
        _decrement(self.workload_totals, pod.workload)
        if pod.pod_affinity:
            self.pods_with_affinity -= 1
        return node_name

    def bind_all(self, placements: Iterable[tuple[Pod, str]]) -> None:
        for pod, node in placements:
            self.bind(pod, node)

    def running_pods(self) -> list[Pod]:
        return [p for ni in self.infos for p in ni.pods]


def _decrement(counts: dict[str, int], key: str) -> None:
    counts[key] -= 1
    if counts[key] == 0:
        del counts[key]
