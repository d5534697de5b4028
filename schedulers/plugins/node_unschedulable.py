"""NodeUnschedulable: cordoned nodes only take pods tolerating their taint.

Upstream: ``nodeunschedulable/node_unschedulable.go``.
"""

from __future__ import annotations

from schedulers.model import Pod, Taint
from schedulers.state import ClusterState, NodeInfo

__all__ = ["NAME", "NodeUnschedulable", "new"]

NAME = "NodeUnschedulable"
_TAINT = Taint(key="node.kubernetes.io/unschedulable", effect="NoSchedule")


class NodeUnschedulable:
    name = NAME

    def filter(self, pod: Pod, ni: NodeInfo, state: ClusterState) -> str | None:
        if ni.node.unschedulable and not any(t.tolerates(_TAINT) for t in pod.tolerations):
            return "node(s) were unschedulable"
        return None


def new() -> NodeUnschedulable:
    return NodeUnschedulable()
