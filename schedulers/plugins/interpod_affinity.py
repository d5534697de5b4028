"""InterPodAffinity (preferred terms): pull toward / push from pods matching a selector.

Upstream: ``interpodaffinity/scoring.go``. For every topology pair the score
sums the weights of (a) the incoming pod's preferred (anti-)affinity terms
matched by existing pods there and (b) existing pods' preferred terms matched
by the incoming pod; anti-affinity counts negative. Normalised as
100 * (s - min) / (max - min), 0 when all equal. Required (hard) inter-pod
terms are not modelled (see docs/schedulers.md).
"""

from __future__ import annotations

from schedulers.model import Pod, PodAffinityTerm
from schedulers.plugins._normalize import MAX_NODE_SCORE
from schedulers.state import ClusterState, NodeInfo

__all__ = ["NAME", "InterPodAffinity", "new"]

NAME = "InterPodAffinity"


class InterPodAffinity:
    name = NAME

    def score(self, pod: Pod, feasible: list[NodeInfo], state: ClusterState) -> list[int] | None:
        if not pod.pod_affinity and state.pods_with_affinity == 0:
            return None
        pairs: dict[tuple[str, str], int] = {}

        def add(term: PodAffinityTerm, labels: dict[str, str]) -> None:
            value = labels.get(term.topology_key)
            if value is not None:
                key = (term.topology_key, value)
                pairs[key] = pairs.get(key, 0) + (-term.weight if term.anti else term.weight)

        for ni in state.infos:
            for other in ni.pods:
                if other.namespace != pod.namespace:
                    continue
                for term in pod.pod_affinity:
                    if term.selects(other.labels):
                        add(term, ni.node.labels)
                for term in other.pod_affinity:
                    if term.selects(pod.labels):
                        add(term, ni.node.labels)
        if not pairs:
            return None
        raw = [sum(v for (k, val), v in pairs.items() if ni.node.labels.get(k) == val)
               for ni in feasible]
        low, top = min(raw), max(raw)
        if top == low:
            return [0] * len(raw)
        return [int(MAX_NODE_SCORE * ((s - low) / (top - low))) for s in raw]


def new() -> InterPodAffinity:
    return InterPodAffinity()
