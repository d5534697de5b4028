"""A Firmament/Poseidon-style flow network, built with numpy and solved by OR-Tools.

Graph (one round)::

    pod class e (supply = its pending pods) --cost c[e,n], cap--> node n
    node n --slot arcs, increasing cost--> sink S
    pod class e --unscheduled cost--> aggregator U --> S

Pods of one equivalence class (same workload, requests and constraints) have
identical arcs, so they share one source node whose supply is their number:
this is Firmament's task-equivalence-class aggregation, and keeps the graph at
classes x nodes arcs instead of pods x nodes. A node's parallel slot arcs with
rising cost make the load term convex: the k-th pod on a node pays the k-th
slot's price, so the solver spreads unless traffic pays for co-location.
(The cost model may merge far slots into wider arcs to keep the graph small.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ortools.graph.python import min_cost_flow

__all__ = ["FlowProblem", "FlowSolution", "solve"]


@dataclass
class FlowProblem:
    supply: np.ndarray            # (E,) pending pods per class
    arc_cost: np.ndarray          # (E, N) class -> node cost
    arc_cap: np.ndarray           # (E, N) class -> node capacity (0: no arc)
    slot_cost: np.ndarray         # (N, S) cost per pod of the node's k-th slot (non-decreasing)
    slot_cap: np.ndarray          # (N, S) pods that slot takes (0: no slot)
    unscheduled_cost: np.ndarray  # (E,) cost of leaving one pod of the class pending


@dataclass
class FlowSolution:
    placed: np.ndarray       # (E, N) pods of class e sent to node n
    unscheduled: np.ndarray  # (E,)
    cost: int


def solve(p: FlowProblem) -> FlowSolution:
    e_count, n_count = p.arc_cost.shape
    total = int(p.supply.sum())
    if total == 0:
        return FlowSolution(np.zeros((e_count, n_count), np.int64),
                            np.zeros(e_count, np.int64), 0)
    node_base, agg, sink = e_count, e_count + n_count, e_count + n_count + 1
    # Class -> node arcs (only where pods of the class may go).
    ee, nn = np.nonzero(p.arc_cap > 0)
    tails = [ee, np.arange(e_count)]
    heads = [node_base + nn, np.full(e_count, agg)]
    caps = [p.arc_cap[ee, nn], p.supply]
    costs = [p.arc_cost[ee, nn], p.unscheduled_cost]
    sn, sk = np.nonzero(p.slot_cap > 0)
    tails += [node_base + sn, np.array([agg])]
    heads += [np.full(len(sn), sink), np.array([sink])]
    caps += [p.slot_cap[sn, sk], np.array([total])]
    costs += [p.slot_cost[sn, sk], np.array([0])]

    smcf = min_cost_flow.SimpleMinCostFlow()
    smcf.add_arcs_with_capacity_and_unit_cost(
        np.concatenate(tails).astype(np.int32), np.concatenate(heads).astype(np.int32),
        np.concatenate(caps).astype(np.int64), np.concatenate(costs).astype(np.int64))
    supplies = np.zeros(e_count + n_count + 2, np.int64)
    supplies[:e_count] = p.supply
    supplies[sink] = -total
    smcf.set_nodes_supplies(np.arange(len(supplies), dtype=np.int32), supplies)
    status = smcf.solve()
    if status != smcf.OPTIMAL:
        raise RuntimeError(f"min-cost flow failed with status {status}")
    flows = smcf.flows(np.arange(len(ee) + e_count, dtype=np.int32))
    placed = np.zeros((e_count, n_count), np.int64)
    placed[ee, nn] = flows[:len(ee)]
    return FlowSolution(placed, flows[len(ee):len(ee) + e_count].astype(np.int64),
                        int(smcf.optimal_cost()))
