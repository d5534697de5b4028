"""firmament rebalancer: re-solve the running pods' min-cost flow; its migrations are the moves.

What it models, and from where (notes/firmament-poseidon-diktyo.md, sections 1-2):

* **Firmament reschedules running tasks.** Its flow network keeps every running task in
  the graph: the task's arc to its current machine costs the *continuation* cost, arcs
  elsewhere the placement cost; with ``--preemption`` on, flow leaving the current
  machine for another one is a MIGRATE delta (camsas/firmament
  ``flow_graph_manager.cc``; the OSDI 2016 abstract: every task is rescheduled
  continuously through the min-cost max-flow optimisation).
* **Poseidon turns a migration into delete-and-recreate.** PREEMPT and MIGRATE deltas
  delete the pod ("HACK! Kubernetes does not yet have support for preemption") and its
  controller recreates it (kubernetes-sigs/poseidon ``cmd/poseidon/poseidon.go``):
  strategy "evict", the old pod goes first. Poseidon itself ran Firmament with
  ``preemption=false`` (its shipped configuration), so this rebalancer is what Poseidon
  would do with migration switched on, not what it did by default.
* **The costs are this project's own.** Neither Firmament's NET cost model nor Poseidon's
  has pod-to-pod traffic costs (same note, "Testbed notes"); the traffic-aware cost
  model is ``schedulers.policies.firmament``'s, run with ``reschedule=True``: staying
  costs the pod's current cross-node traffic, moving costs the traffic at the new node
  plus ``migration_weight`` x NET_SCALE (default 0.25: a move must save a quarter of the
  busiest pod's traffic). Its proposals are applied best first, each re-checked
  against the layout as it now is, on schedulable nodes where the pod fits; the first
  ``max_moves`` (default 4) of them are the moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from schedulers.model import Node, Pod
from schedulers.policies.firmament import FirmamentPolicy
from schedulers.rebalancers.base import (
    DEFAULT_WINDOW_S,
    Move,
    Strategy,
    check_layout,
    check_max_moves,
    check_number,
    natural,
)
from schedulers.traffic import TrafficMatrix

if TYPE_CHECKING:
    from schedulers.network import NodeNetwork

__all__ = ["DEFAULT_MAX_MOVES", "DEFAULT_MIGRATION_WEIGHT", "NAME", "STRATEGY", "SUMMARY",
           "FirmamentRebalancer", "new"]

NAME = "firmament"
STRATEGY: Strategy = "evict"
SUMMARY = "re-solves the running pods' flow; a move must save more than its migration cost"
DEFAULT_MAX_MOVES = 4
DEFAULT_MIGRATION_WEIGHT = 0.25


class FirmamentRebalancer:
    name = NAME
    strategy: Strategy = STRATEGY

    def __init__(self, *, max_moves: int = DEFAULT_MAX_MOVES,
                 window_s: float = DEFAULT_WINDOW_S,
                 migration_weight: float = DEFAULT_MIGRATION_WEIGHT) -> None:
        self.max_moves = check_max_moves(NAME, max_moves)
        self.window_s = check_number(NAME, "window_s", window_s, low=0.0, low_open=True)
        self.migration_weight = check_number(NAME, "migration_weight", migration_weight,
                                             low=0.0)

    def plan(self, running: Sequence[tuple[Pod, str]], nodes: Sequence[Node],
             traffic: TrafficMatrix) -> list[Move]:
        check_layout(running, nodes)
        # By name: the flow breaks ties by position, and the result must not depend on
        # the order the runner lists pods in.
        running = sorted(running, key=lambda t: natural(t[0].name))
        policy = FirmamentPolicy(traffic, reschedule=True,
                                 migration_weight=self.migration_weight)
        result = policy.schedule([], nodes, running=running)
        # Best first, each checked after the ones before it: a prefix is consistent.
        return [Move(pod, src, dst, f"min-cost flow: saves more than its migration cost "
                                    f"(weight {self.migration_weight:g})")
                for pod, src, dst in result.migrations[:self.max_moves]]


def new(*, max_moves: int = DEFAULT_MAX_MOVES, window_s: float = DEFAULT_WINDOW_S,
        migration_weight: float = DEFAULT_MIGRATION_WEIGHT, seed: int | None = None,
        network: NodeNetwork | None = None) -> FirmamentRebalancer:
    del seed, network  # deterministic; traffic only, like the policy
    return FirmamentRebalancer(max_moves=max_moves, window_s=window_s,
                               migration_weight=migration_weight)
