"""NodeResourcesFit: the fit filter and the LeastAllocated score.

Upstream: ``noderesources/fit.go`` (filter) and ``least_allocated.go`` (score).
The score charges *non-zero* requests: a pod without requests counts as
100m CPU / 200Mi, so even best-effort pods spread.
"""

from __future__ import annotations

from schedulers.model import Pod
from schedulers.plugins._normalize import MAX_NODE_SCORE
from schedulers.state import ClusterState, NodeInfo, nonzero_requests

__all__ = ["NAME", "NodeResourcesFit", "least_requested_score", "new"]

NAME = "NodeResourcesFit"


def least_requested_score(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


class NodeResourcesFit:
    name = NAME

    def __init__(self, cpu_weight: int = 1, memory_weight: int = 1) -> None:
        self.weights = (cpu_weight, memory_weight)

    def filter(self, pod: Pod, ni: NodeInfo, state: ClusterState) -> str | None:
        node = ni.node
        if len(ni.pods) + 1 > node.max_pods:
            return "Too many pods"
        # A zero request always fits, even on an overcommitted node (as upstream).
        if pod.cpu_m > 0 and pod.cpu_m > node.cpu_m - ni.requested_cpu:
            return "Insufficient cpu"
        if pod.memory > 0 and pod.memory > node.memory - ni.requested_memory:
            return "Insufficient memory"
        return None

    def score(self, pod: Pod, feasible: list[NodeInfo], state: ClusterState) -> list[int]:
        cpu, mem = nonzero_requests(pod)
        wc, wm = self.weights
        out = []
        for ni in feasible:
            total = weight_sum = 0
            if ni.node.cpu_m:
                total += least_requested_score(ni.nonzero_cpu + cpu, ni.node.cpu_m) * wc
                weight_sum += wc
            if ni.node.memory:
                total += least_requested_score(ni.nonzero_memory + mem, ni.node.memory) * wm
                weight_sum += wm
            out.append(total // weight_sum if weight_sum else 0)
        return out


def new(cpu_weight: int = 1, memory_weight: int = 1) -> NodeResourcesFit:
    return NodeResourcesFit(cpu_weight, memory_weight)
