"""netmarks rebalancer: a descheduler that evicts pods whose traffic mostly crosses nodes,
and NetMARKS places them again.

What it models, and from where:

* **The descheduler's division of labour** (kubernetes-sigs/descheduler, README):
  it "finds pods that can be moved and evicts them" and "does not schedule replacement
  of evicted pods but relies on the default scheduler for that"; how many pods one
  cycle may evict is capped (its ``maxNoOfPodsToEvictPerNode``-style limits). Here the
  scheduler that places the replacements is the NetMARKS model
  (``schedulers.policies.netmarks``, kube_default plus the NetMARKS traffic score).
* **Why NetMARKS needs one.** NetMARKS places one pod at a time with the traffic known
  at that moment (notes/netmarks-and-kube-scheduler.md: an extender's prioritize verb
  over Istio byte counts); a placement that was right for yesterday's traffic is never
  revisited. Issue 17 records that the paper leaves the rest to the descheduler; the
  paper's full text was not available (same note), so the eviction rule below is this
  testbed's own, in the descheduler's style (a per-pod threshold, a cap per cycle), not
  a published NetMARKS component. The closest published design is Marchese and
  Tomarchio's traffic-aware descheduler (CCGrid 2022; notes/firmament-poseidon-diktyo.md
  section 4), whose rule was not available either.

The rule:

* A pod's traffic is its workload's traffic with every peer workload (``between``, over
  the window the runner hands over), shared evenly over the pod pairs, as the firmament
  and trade models share it; the part exchanged with peer pods on *other* nodes crosses.
* A pod whose crossing share is above ``threshold`` (default 0.5, the lowest that can
  matter: see the next point) is a candidate; the
  one with the most crossing bytes/s goes first (ties by pod name).
* It is placed again by the NetMARKS policy against every other running pod, as the
  scheduler places an evicted pod's replacement; cordoned nodes are filtered out by
  kube_default's NodeUnschedulable filter, full ones by NodeResourcesFit. The move is
  made only if the pod lands on another node *and* crosses less there: the descheduler
  asks the scheduler's model first, so an eviction that would change nothing (the pod's
  partners on a cordoned or full node) is not made. Real descheduler strategies do not
  ask; without this rule a pod with nowhere better to go would be evicted every interval.
* Then the next candidate, judged on the layout as it now is, until ``max_moves``
  (default 2) pods moved or no candidate is left; each pod is tried once per call.
  Strategy "evict": the old pod goes first, as an eviction does.
* No traffic, no candidates: it never moves a pod without data (NetMARKS does not vote
  without data either).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from schedulers.model import Node, Pod
from schedulers.rebalancers.base import (
    DEFAULT_WINDOW_S,
    Move,
    Strategy,
    check_layout,
    check_max_moves,
    check_number,
    natural,
)
from schedulers.registry import get_policy
from schedulers.traffic import TrafficMatrix

if TYPE_CHECKING:
    from schedulers.network import NodeNetwork

__all__ = ["DEFAULT_MAX_MOVES", "DEFAULT_THRESHOLD", "NAME", "STRATEGY", "SUMMARY",
           "NetmarksRebalancer", "cross_traffic", "new"]

NAME = "netmarks"
STRATEGY: Strategy = "evict"
SUMMARY = "evicts pods whose traffic mostly crosses nodes; NetMARKS places them again"
DEFAULT_THRESHOLD = 0.5
DEFAULT_MAX_MOVES = 2


def cross_traffic(running: Sequence[tuple[Pod, str]], traffic: TrafficMatrix
                  ) -> dict[str, tuple[float, float]]:
    """pod -> (bytes/s it exchanges with peer pods on other nodes, all its bytes/s).

    A workload's traffic with a peer workload is shared evenly over their pod pairs;
    peers with no running pod do not count."""
    replicas = Counter(p.workload for p, _ in running)
    on_node = Counter((p.workload, node) for p, node in running)
    out: dict[str, tuple[float, float]] = {}
    for pod, node in running:
        w = pod.workload
        cross = total = 0.0
        for v, rate in traffic.neighbours(w).items():
            if not replicas[v]:
                continue
            per_pair = rate / (replicas[w] * replicas[v])
            total += per_pair * replicas[v]
            cross += per_pair * (replicas[v] - on_node[(v, node)])
        out[pod.name] = (cross, total)
    return out


class NetmarksRebalancer:
    name = NAME
    strategy: Strategy = STRATEGY

    def __init__(self, *, threshold: float = DEFAULT_THRESHOLD,
                 max_moves: int = DEFAULT_MAX_MOVES, window_s: float = DEFAULT_WINDOW_S,
                 seed: int | None = None) -> None:
        # Below 0.5 would change nothing: a move must cut the pod's crossing traffic,
        # which needs a node holding more of its partners than its own does, so more
        # than half of its traffic crossing already.
        self.threshold = check_number(
            NAME, "threshold", threshold, low=0.5, high=1.0, high_open=True,
            why="a pod crossing at most half of its traffic cannot cross less elsewhere")
        self.max_moves = check_max_moves(NAME, max_moves)
        self.window_s = check_number(NAME, "window_s", window_s, low=0.0, low_open=True)
        # kube_default breaks ties at random; a fixed seed makes plan() repeatable.
        self.seed = 0 if seed is None else seed

    def plan(self, running: Sequence[tuple[Pod, str]], nodes: Sequence[Node],
             traffic: TrafficMatrix) -> list[Move]:
        check_layout(running, nodes)
        if not traffic:
            return []
        # By name: the result must not depend on the order the runner lists pods in.
        layout = {p.name: node for p, node in sorted(running, key=lambda t: natural(t[0].name))}
        pods = {p.name: p for p, _ in running}
        policy = get_policy("netmarks", traffic=traffic, seed=self.seed)
        tried: set[str] = set()
        moves: list[Move] = []
        while len(moves) < self.max_moves:
            now = [(pods[name], node) for name, node in layout.items()]
            shares = cross_traffic(now, traffic)
            candidates = [name for name, (cross, total) in shares.items()
                          if name not in tried and total > 0 and cross / total > self.threshold]
            if not candidates:
                break
            name = min(candidates, key=lambda n: (-shares[n][0], natural(n)))
            tried.add(name)
            src = layout[name]
            rest = [(p, node) for p, node in now if p.name != name]
            dst = policy.schedule([pods[name]], nodes, running=rest).assignments.get(name)
            if dst is None or dst == src:
                continue
            # The scheduler's answer, tried before evicting: a move that would not cut the
            # pod's crossing traffic (e.g. its partners sit on a cordoned or full node)
            # is not made.
            after = cross_traffic([*rest, (pods[name], dst)], traffic)[name][0]
            cross, total = shares[name]
            if after >= cross:
                continue
            layout[name] = dst
            moves.append(Move(name, src, dst, f"{cross / total:.0%} of its {total:,.0f} B/s "
                                              f"crossed nodes, {after / total:.0%} after"))
        return moves


def new(*, threshold: float = DEFAULT_THRESHOLD, max_moves: int = DEFAULT_MAX_MOVES,
        window_s: float = DEFAULT_WINDOW_S, seed: int | None = None,
        network: NodeNetwork | None = None) -> NetmarksRebalancer:
    del network  # NetMARKS sees traffic only, not delays between nodes
    return NetmarksRebalancer(threshold=threshold, max_moves=max_moves, window_s=window_s,
                              seed=seed)
