"""Models of Diktyo's two plugins (scheduler-plugins ``pkg/networkaware``).

``NetworkOverhead`` (PreFilter + Filter + Score + NormalizeScore), for a pod of a
workload with dependencies in the AppGroup, against the pods of those dependencies that
are already placed (``GetScheduledList``: pods with a node; one entry per pod, so a
dependency with three placed replicas counts three times). For a candidate node n and a
placed dependency pod on node h:

- same node: met, cost 0;
- h has neither a region nor a zone label: unmet, cost 100;
- same region (an absent label equals an absent label), same zone: met, cost 1;
- same region, other zone: the zone cost from the NetworkTopology; met when
  ``cost <= maxNetworkCost``, else unmet; cost 100 (and neither met nor unmet) when
  there is no such cost;
- other region: the same with the region cost.

Upstream reads the placed pods from its pod informer, not from the scheduler's cache of
assumed pods: a dependency decided a moment ago is invisible until its binding has gone
through the API server and back (``NetworkOverhead.bind_lag``, measured on kwok).

Filter: the node is rejected when unmet > met. Score: the sum of the costs,
normalised over the feasible nodes to ``100 - int(100 * (c - min) / (max - min))`` (all
100 when equal, all 0 when every cost is 0). A pod outside the AppGroup, without
dependencies, or whose AppGroup has no placed pod is scored 0 everywhere and never
filtered ("scoreEqually").

``TopologicalSort`` (QueueSort): two pods of the AppGroup leave the queue by their
workload's ``status.topologyOrder`` index (lower first; a workload missing from it is
-1). Upstream's ``Less`` is ``index1 <= index2``, so replicas of one workload tie and the
heap decides; the model keeps their arrival order. A queue sorts only the pods that
wait in it together: the model replays the arrivals against a scheduling cycle of a
given length (``TopologicalSort.cycle``).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from schedulers.diktyo.appgroup import AppGroup
from schedulers.diktyo.costs import (
    MAX_COST,
    REGION_LABEL,
    SAME_HOST_COST,
    SAME_ZONE_COST,
    ZONE_LABEL,
    NetworkCosts,
    network_costs,
)
from schedulers.model import Pod
from schedulers.network import NodeNetwork
from schedulers.plugins._normalize import MAX_NODE_SCORE
from schedulers.state import ClusterState, NodeInfo

__all__ = [
    "NETWORK_OVERHEAD",
    "TOPOLOGICAL_SORT",
    "NetworkOverhead",
    "TopologicalSort",
    "normalize",
    "pair_cost",
]

NETWORK_OVERHEAD = "NetworkOverhead"
TOPOLOGICAL_SORT = "TopologicalSort"


def _place(labels: dict[str, str]) -> tuple[str, str]:
    return labels.get(REGION_LABEL, ""), labels.get(ZONE_LABEL, "")


def pair_cost(node: NodeInfo, host: NodeInfo, costs: NetworkCosts,
              max_network_cost: int) -> tuple[int, bool | None]:
    """(cost for the score, met?) of a dependency pod on ``host`` for a pod on ``node``;
    met is None when the NetworkTopology has no cost for the pair (counted neither way)."""
    if node.name == host.name:
        return SAME_HOST_COST, True
    region, zone = _place(node.node.labels)
    h_region, h_zone = _place(host.node.labels)
    if not h_region and not h_zone:
        return MAX_COST, False
    if region == h_region:
        if zone == h_zone:
            return SAME_ZONE_COST, True
        cost = costs.lookup(region, zone, (zone, h_zone))
    else:
        cost = costs.lookup(region, zone, (region, h_region))
    if cost is None:
        return MAX_COST, None
    return cost, cost <= max_network_cost


def normalize(costs: list[int]) -> list[int]:
    """NormalizeScore: lower cost, higher score, over the feasible nodes."""
    if not costs:
        return []
    low, high = min(costs), max(costs)
    if low == 0 and high == 0:
        return costs
    if high == low:
        return [MAX_NODE_SCORE - (c - low) for c in costs]
    return [MAX_NODE_SCORE - int(float(MAX_NODE_SCORE) * (c - low) / (high - low))
            for c in costs]


@dataclass
class NetworkOverhead:
    """Filter + score of one pod against its placed dependencies (see the module doc).

    The NetworkTopology is derived once from the nodes first seen and ``network``."""

    appgroup: AppGroup
    network: NodeNetwork | None = None
    # The queue that decided the pods (its decision times) and how long a decided pod
    # takes to show up bound in the plugin's pod informer, in the same unit: a
    # dependency decided less than ``bind_lag`` before the pod is not counted. None:
    # every placed pod counts at once.
    clock: TopologicalSort | None = None
    bind_lag: float = 0.0
    name: str = NETWORK_OVERHEAD
    _costs: NetworkCosts | None = field(default=None, repr=False)

    def costs(self, state: ClusterState) -> NetworkCosts:
        if self._costs is None:
            self._costs = network_costs(((ni.name, ni.node.labels) for ni in state.infos),
                                        self.network)
        return self._costs

    def _placed(self, pod: Pod, state: ClusterState) -> list[tuple[NodeInfo, int, int]]:
        """(host, number of placed pods, maxNetworkCost) per dependency and host node;
        empty means "scoreEqually"."""
        deps = self.appgroup.dependencies_of(pod.workload) if pod.workload in self.appgroup \
            else ()
        if not deps:
            return []
        seen = self._seen_before(pod)
        out = []
        for ni in state.infos:
            for d in deps:
                n = ni.workload_counts.get(d.workload, 0)
                if n and seen is not None:
                    n = sum(1 for q in ni.pods if q.workload == d.workload and seen(q))
                if n:
                    out.append((ni, n, d.max_network_cost))
        return out

    def _seen_before(self, pod: Pod) -> Callable[[Pod], bool] | None:
        """Which placed pods the informer shows bound when ``pod`` is decided (None:
        all of them)."""
        if self.clock is None or self.bind_lag <= 0 or pod.name not in self.clock.decided:
            return None
        decided = self.clock.decided
        cutoff = decided[pod.name] - self.bind_lag
        # Pods placed before this batch (not decided by the queue) are long bound.
        return lambda q: q.name not in decided or decided[q.name] <= cutoff

    def counts(self, pod: Pod, ni: NodeInfo, state: ClusterState) -> tuple[int, int, int]:
        """(met, unmet, accumulated cost) of ``pod`` on ``ni``."""
        met = unmet = total = 0
        costs = self.costs(state)
        for host, n, limit in self._placed(pod, state):
            cost, ok = pair_cost(ni, host, costs, limit)
            total += cost * n
            if ok is True:
                met += n
            elif ok is False:
                unmet += n
        return met, unmet, total

    def filter(self, pod: Pod, ni: NodeInfo, state: ClusterState) -> str | None:
        met, unmet, _ = self.counts(pod, ni, state)
        if unmet > met:
            return (f"node {ni.name} does not meet several network requirements from "
                    f"workload dependencies: satisfied {met}, violated {unmet}")
        return None

    def score(self, pod: Pod, feasible: list[NodeInfo], state: ClusterState) -> list[int]:
        if not self._placed(pod, state):
            return [0] * len(feasible)
        return normalize([self.counts(pod, ni, state)[2] for ni in feasible])


@dataclass
class TopologicalSort:
    """The queue order of the AppGroup's pods by their workload's index.

    The queue sorts only the pods waiting together. ``cycle`` is how long one
    scheduling cycle takes, in units of the gap between two Deployment creations (the
    unit of ``queue_arrivals``' times): each cycle takes the best pod among those that
    have arrived. ``cycle=0``: every pod is placed before the next arrives (arrival
    order); ``cycle=inf``: all pods wait together (the whole batch in index order).
    """

    appgroup: AppGroup
    cycle: float = math.inf
    name: str = TOPOLOGICAL_SORT
    # Pod name -> when it was decided (same unit), from the last order().
    decided: dict[str, float] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not (self.cycle >= 0):  # also refuses NaN
            raise ValueError(f"TopologicalSort cycle must be >= 0, got {self.cycle}")

    def key(self, pod: Pod) -> int:
        """Lower leaves first: the workload's index (pods outside the AppGroup: -1,
        first; upstream compares those by PrioritySort, which the testbed never needs)."""
        return self.appgroup.index(pod.workload) if pod.workload in self.appgroup else -1

    def order(self, arrivals: list[tuple[float, Pod]]) -> list[Pod]:
        """The pods in the order they are decided; ``decided`` then holds each one's
        decision time (``inf`` cycle: decisions infinitely far apart)."""
        self.decided = {}
        if math.isinf(self.cycle):
            out = [p for _, p in sorted(arrivals, key=lambda a: self.key(a[1]))]  # stable
            self.decided = {p.name: float(i) * 1e12 for i, p in enumerate(out)}
            return out
        # By time (queue_arrivals puts higher priorities first, which this queue ignores).
        arrivals = sorted(arrivals, key=lambda a: a[0])
        waiting: list[tuple[int, int, Pod]] = []
        out = []
        now = -math.inf
        i = 0
        while len(out) < len(arrivals):
            if not waiting:
                now = max(now, arrivals[i][0])
            while i < len(arrivals) and arrivals[i][0] <= now:
                heapq.heappush(waiting, (self.key(arrivals[i][1]), i, arrivals[i][1]))
                i += 1
            pod = heapq.heappop(waiting)[2]
            out.append(pod)
            self.decided[pod.name] = now
            now += self.cycle
        return out
