"""NodeResourcesBalancedAllocation: prefer nodes whose CPU and memory fill evenly.

Upstream: ``noderesources/balanced_allocation.go``. Uses *actual* requests
(not the non-zero defaults); best-effort pods are skipped (kubernetes#129138).
"""

from __future__ import annotations

from schedulers.model import Pod
from schedulers.plugins._normalize import MAX_NODE_SCORE
from schedulers.state import ClusterState, NodeInfo

__all__ = ["NAME", "BalancedAllocation", "balanced_score", "new"]

NAME = "NodeResourcesBalancedAllocation"


def balanced_score(requested: list[int], allocatable: list[int]) -> int:
    fractions = [min(1.0, r / a) for r, a in zip(requested, allocatable, strict=True) if a]
    std = 0.0
    if len(fractions) == 2:
        std = abs((fractions[0] - fractions[1]) / 2)
    elif len(fractions) > 2:
        mean = sum(fractions) / len(fractions)
        std = (sum((f - mean) ** 2 for f in fractions) / len(fractions)) ** 0.5
    return int((1 - std) * MAX_NODE_SCORE)


class BalancedAllocation:
    name = NAME

    def score(self, pod: Pod, feasible: list[NodeInfo], state: ClusterState) -> list[int] | None:
        if pod.cpu_m == 0 and pod.memory == 0:
            return None
        return [balanced_score([ni.requested_cpu + pod.cpu_m, ni.requested_memory + pod.memory],
                               [ni.node.cpu_m, ni.node.memory]) for ni in feasible]


def new() -> BalancedAllocation:
    return BalancedAllocation()
