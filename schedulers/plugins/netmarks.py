"""NetMARKS' score: traffic between the pod's workload and the pods already on a node.

For pod p of workload A and node n::

    raw(n) = sum over workloads W on n of  between(A, W) * pods_W(n) / pods_W

(``between`` = F(A,W) + F(W,A); a workload's traffic is shared evenly by its
replicas, so with one replica each this is exactly "all direct traffic between
the node and the pod"). Scores are scaled to the extender range 0..10 with the
best node at 10; no traffic data for A means no vote (all 0). As a plugin the
score is returned x10, so a profile weight w adds ``score * w * 10`` to the
total exactly as kube-scheduler adds an extender's priority.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from schedulers.model import Pod
from schedulers.state import ClusterState, NodeInfo
from schedulers.traffic import TrafficMatrix

__all__ = ["MAX_EXTENDER_PRIORITY", "NAME", "NetmarksScore", "extender_scores", "new",
           "raw_scores"]

NAME = "NetMARKS"
MAX_EXTENDER_PRIORITY = 10


def raw_scores(workload: str, node_counts: Sequence[Mapping[str, int]],
               totals: Mapping[str, int], traffic: TrafficMatrix) -> list[float]:
    """Traffic (bytes/s) that placing one pod of ``workload`` on each node keeps local."""
    row = traffic.neighbours(workload)
    # Per-replica weights once per call; then each node costs one lookup per neighbour
    # (the extender scores up to thousands of nodes per request).
    weights = [(w, f / totals[w]) for w, f in row.items() if totals.get(w)]
    if not weights:
        return [0.0] * len(node_counts)
    out = []
    for counts in node_counts:
        if not counts:
            out.append(0.0)
            continue
        get = counts.get
        out.append(sum([f * get(w, 0) for w, f in weights]))
    return out


def extender_scores(raw: Sequence[float]) -> list[int]:
    """Scale to 0..10, best node 10 (half up); all 0 when nothing is known."""
    top = max(raw, default=0.0)
    if top <= 0:
        return [0] * len(raw)
    return [int(MAX_EXTENDER_PRIORITY * r / top + 0.5) for r in raw]


class NetmarksScore:
    name = NAME

    def __init__(self, traffic: TrafficMatrix) -> None:
        self.traffic = traffic

    def score(self, pod: Pod, feasible: list[NodeInfo], state: ClusterState) -> list[int] | None:
        raw = raw_scores(pod.workload, [ni.workload_counts for ni in feasible],
                         state.workload_totals, self.traffic)
        return [10 * s for s in extender_scores(raw)]


def new(traffic: TrafficMatrix) -> NetmarksScore:
    return NetmarksScore(traffic)
