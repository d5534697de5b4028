"""TaintToleration: NoSchedule/NoExecute taints filter; PreferNoSchedule ones score.

Upstream: ``tainttoleration/taint_toleration.go``. The raw score counts
intolerable PreferNoSchedule taints; normalisation reverses it (fewer is better).
"""

from __future__ import annotations

from schedulers.model import Pod
from schedulers.plugins._normalize import default_normalize
from schedulers.state import ClusterState, NodeInfo

__all__ = ["NAME", "TaintToleration", "new"]

NAME = "TaintToleration"


class TaintToleration:
    name = NAME

    def filter(self, pod: Pod, ni: NodeInfo, state: ClusterState) -> str | None:
        for taint in ni.node.taints:
            if taint.effect == "PreferNoSchedule":
                continue
            if not any(t.tolerates(taint) for t in pod.tolerations):
                return f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}"
        return None

    def score(self, pod: Pod, feasible: list[NodeInfo], state: ClusterState) -> list[int]:
        # Only tolerations with effect PreferNoSchedule or "" count here (as upstream).
        tolerations = [t for t in pod.tolerations if t.effect in ("", "PreferNoSchedule")]
        raw = []
        for ni in feasible:
            raw.append(sum(1 for taint in ni.node.taints if taint.effect == "PreferNoSchedule"
                           and not any(t.tolerates(taint) for t in tolerations)))
        return default_normalize(raw, reverse=True)


def new() -> TaintToleration:
    return TaintToleration()
