"""NodeAffinity: required terms (and nodeSelector) filter; preferred terms score.

Upstream: ``nodeaffinity/node_affinity.go``: raw score = sum of the weights of
matching preferred terms, normalised by the maximum.
"""

from __future__ import annotations

from schedulers.model import Pod
from schedulers.plugins._normalize import default_normalize
from schedulers.state import ClusterState, NodeInfo

__all__ = ["NAME", "NodeAffinity", "new"]

NAME = "NodeAffinity"


class NodeAffinity:
    name = NAME

    def filter(self, pod: Pod, ni: NodeInfo, state: ClusterState) -> str | None:
        if not pod.matches_node_selection(ni.node.labels):
            return "node(s) didn't match Pod's node affinity/selector"
        return None

    def score(self, pod: Pod, feasible: list[NodeInfo], state: ClusterState) -> list[int] | None:
        if not pod.node_preferences:
            return None
        raw = [sum(p.weight for p in pod.node_preferences if p.term.matches(ni.node.labels))
               for ni in feasible]
        return default_normalize(raw, reverse=False)


def new() -> NodeAffinity:
    return NodeAffinity()
