"""trade rebalancer: TraDE-style make-before-break moves that lower traffic x delay.

What it models, and from where (notes/contenders-2026.md, "TraDE"; the sources of
``schedulers.policies.trade``): TraDE's adaptive rescheduler moves running
microservices when QoS is violated, and it "starts new pods before evicting old ones
(make before break)"; the cost it lowers is the traffic between two services times the
measured delay between the nodes hosting them, under node capacities; the authors'
mapper starts from the current placement and moves high-stress services first.

This project's choices (as the trade policy's, whose mapper this reuses:
``TradePolicy.mapper``, per-pod traffic, the delay matrix with its floor, hard
capacity and the static filters, ties kept at the current node):

* **Trigger: the cost, not a QoS target.** The testbed has no QoS target per
  scenario, so every call looks for improvements; no traffic means every node costs
  the same and nothing moves.
* **Best move first.** Each step moves the single pod whose move to its cheapest
  allowed node (schedulable, untainted for it, with room while the old pod still runs
  elsewhere) lowers the total traffic x delay the most; steps repeat until no move
  gains or ``max_moves`` (default 2) pods moved. A pod moves at most once per call.
  Sequential and deterministic, where TraDE evaluates candidates in parallel.
* **Delays** from the ``network`` input (``schedulers.network``, the topology's
  one-way delays); none given: a flat network, where the cost is cross-node traffic.
  The runner may set ``network`` again after a link is degraded, as TraDE re-measures.
"""

from __future__ import annotations

from collections.abc import Sequence

from schedulers.classes import allowed_mask, pod_classes
from schedulers.model import Node, Pod
from schedulers.network import NodeNetwork
from schedulers.policies.trade import TradePolicy
from schedulers.rebalancers.base import (
    DEFAULT_WINDOW_S,
    Move,
    Strategy,
    check_layout,
    check_max_moves,
    check_number,
    natural,
)
from schedulers.state import ClusterState
from schedulers.traffic import TrafficMatrix

__all__ = ["DEFAULT_MAX_MOVES", "NAME", "STRATEGY", "SUMMARY", "TradeRebalancer", "new"]

NAME = "trade"
STRATEGY: Strategy = "make-before-break"
SUMMARY = "moves single pods to where traffic x delay drops most, the new pod first"
DEFAULT_MAX_MOVES = 2
# A gain this small (relative to the pod's cost) is float noise, not a reason to move.
_TIE = 1e-9


class TradeRebalancer:
    name = NAME
    strategy: Strategy = STRATEGY

    def __init__(self, *, max_moves: int = DEFAULT_MAX_MOVES,
                 window_s: float = DEFAULT_WINDOW_S,
                 network: NodeNetwork | None = None) -> None:
        self.max_moves = check_max_moves(NAME, max_moves)
        self.window_s = check_number(NAME, "window_s", window_s, low=0.0, low_open=True)
        self.network = network

    def plan(self, running: Sequence[tuple[Pod, str]], nodes: Sequence[Node],
             traffic: TrafficMatrix) -> list[Move]:
        check_layout(running, nodes)
        if not traffic:
            return []
        # By name: the result must not depend on the order the runner lists pods in.
        running = sorted(running, key=lambda t: natural(t[0].name))
        m, widx = TradePolicy(traffic, self.network).mapper(nodes, [p for p, _ in running])
        index = {n.name: i for i, n in enumerate(nodes)}
        where = {p.name: index[node] for p, node in running}
        for p, node in running:
            m.place(p, widx[p.workload], index[node])
        pods = [p for p, _ in running]
        classes = pod_classes(pods)
        allowed = allowed_mask(classes, ClusterState(nodes))
        cls_of = {p.name: e for e, c in enumerate(classes) for p in c.pods}

        moves: list[Move] = []
        moved: set[str] = set()
        while len(moves) < self.max_moves:
            best: tuple[float, Pod, int, float, float] | None = None
            for p in pods:
                if p.name in moved:
                    continue
                w, here = widx[p.workload], where[p.name]
                m.remove(p, w, here)  # its own resources free, its cost row without it
                to = m.best(p, w, allowed[cls_of[p.name]], current=here)
                if to is not None and to != here:
                    stay, go = float(m.cost[w, here]), float(m.cost[w, to])
                    gain = stay - go
                    # Strictly better only: the first pod (by name) wins equal gains.
                    if gain > _TIE * max(stay, 1.0) and (best is None or gain > best[0]):
                        best = (gain, p, to, stay, go)
                m.place(p, w, here)
            if best is None:
                break
            _, p, to, stay, go = best
            w, here = widx[p.workload], where[p.name]
            m.remove(p, w, here)
            m.place(p, w, to)
            where[p.name] = to
            moved.add(p.name)
            moves.append(Move(p.name, nodes[here].name, nodes[to].name,
                              f"traffic x delay {stay:,.4g} -> {go:,.4g} B/s x ms"))
        return moves


def new(*, max_moves: int = DEFAULT_MAX_MOVES, window_s: float = DEFAULT_WINDOW_S,
        network: NodeNetwork | None = None, seed: int | None = None) -> TradeRebalancer:
    del seed  # deterministic: ties stay where they are
    return TradeRebalancer(max_moves=max_moves, window_s=window_s, network=network)
