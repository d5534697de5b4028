"""PodTopologySpread with the system default constraints (scoring only).

Upstream: ``podtopologyspread/scoring.go`` + ``plugin.go`` defaults: for a pod
without its own constraints, spread the pods selected by its Service/ReplicaSet
(here: the pods of the same workload) with hostname maxSkew 3 and zone maxSkew 5,
both ScheduleAnyway. Raw score of a node:

    round( sum_c  cnt_c * ln(size_c + 2) + (maxSkew_c - 1) )

(cnt = matching pods on the node / in its zone; size = feasible nodes / distinct
zones among them), normalised as 100 * (max + min - s) / max. With system
defaulting, nodes without a zone label are not ignored; the zone term just
does not apply to them.
"""

from __future__ import annotations

import math

from schedulers.model import HOSTNAME_LABEL, ZONE_LABEL, Pod
from schedulers.plugins._normalize import MAX_NODE_SCORE, go_round
from schedulers.state import ClusterState, NodeInfo

__all__ = ["NAME", "SYSTEM_DEFAULT_CONSTRAINTS", "PodTopologySpread", "new"]

NAME = "PodTopologySpread"
SYSTEM_DEFAULT_CONSTRAINTS = ((HOSTNAME_LABEL, 3), (ZONE_LABEL, 5))


class PodTopologySpread:
    name = NAME

    def score(self, pod: Pod, feasible: list[NodeInfo], state: ClusterState) -> list[int] | None:
        if not pod.workload:  # no Service/ReplicaSet selects it: no default constraints
            return None
        w = pod.workload
        host_weight = math.log(len(feasible) + 2)
        zones = {ni.node.labels[ZONE_LABEL] for ni in feasible if ZONE_LABEL in ni.node.labels}
        zone_counts: dict[str, int] = dict.fromkeys(zones, 0)
        if zones:
            # Counted over *all* nodes that match the pod's node selection (the
            # default nodeAffinityPolicy Honor), not only the feasible ones.
            for ni in state.infos:
                zone = ni.node.labels.get(ZONE_LABEL)
                if zone in zone_counts and pod.matches_node_selection(ni.node.labels):
                    zone_counts[zone] += ni.workload_counts.get(w, 0)
        zone_weight = math.log(len(zones) + 2)
        (_, host_skew), (_, zone_skew) = SYSTEM_DEFAULT_CONSTRAINTS
        raw: list[int] = []
        for ni in feasible:
            s = 0.0
            if HOSTNAME_LABEL in ni.node.labels:
                s += ni.workload_counts.get(w, 0) * host_weight + (host_skew - 1)
            zone = ni.node.labels.get(ZONE_LABEL)
            if zone is not None:
                s += zone_counts[zone] * zone_weight + (zone_skew - 1)
            raw.append(go_round(s))
        top, low = max(raw), min(raw)
        if top == 0:
            return [MAX_NODE_SCORE] * len(raw)
        return [MAX_NODE_SCORE * (top + low - s) // top for s in raw]


def new() -> PodTopologySpread:
    return PodTopologySpread()
