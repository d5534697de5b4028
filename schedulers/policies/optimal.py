"""optimal: the exact minimum of inter-node traffic under the capacity constraints (CP-SAT).

Decision ``y[e,n]``: how many pending pods of class e go to node n. With
``Y[w,n]`` the pods of workload w on n (running ones included) and requests
spread evenly over replicas, the traffic that stays on node n between w and v
is ``A[w,v] * Y[w,n] * Y[v,n]`` (``A`` = one pod pair's share, as in
firmament), so the model maximises the local traffic; every pending pod is
placed unless capacity makes that impossible (a pod left out costs more than
any traffic). Identical empty nodes are interchangeable: we require their pod
counts to be non-increasing (symmetry breaking). ``info`` reports the solver
status, the inter-node traffic found, its lower bound and the optimality gap.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence

import numpy as np
from ortools.sat.python import cp_model

from schedulers.classes import allowed_mask, fit_counts, pod_classes
from schedulers.framework import ScheduleResult
from schedulers.model import Node, Pod
from schedulers.state import ClusterState
from schedulers.traffic import TrafficMatrix

__all__ = ["NAME", "OptimalPolicy", "new"]

NAME = "optimal"
_RESOLUTION = 1_000_000  # the largest pairwise coefficient, after integer scaling


class OptimalPolicy:
    name = NAME
    deterministic = True

    def __init__(self, traffic: TrafficMatrix | None = None, *, time_limit_s: float = 10.0,
                 workers: int = 1, seed: int | None = None) -> None:
        self.traffic = traffic if traffic is not None else TrafficMatrix()
        self.time_limit_s = time_limit_s
        self.workers = workers
        self.seed = 0 if seed is None else seed

    def schedule(self, pods: Sequence[Pod], nodes: Sequence[Node], *,
                 running: Sequence[tuple[Pod, str]] = ()) -> ScheduleResult:
        start = time.perf_counter()
        state = ClusterState(nodes)
        state.bind_all(running)
        classes = pod_classes(pods)
        workloads = sorted({p.workload for p in pods} | set(state.workload_totals))
        index = {w: i for i, w in enumerate(workloads)}
        nn = len(state.infos)
        replicas = np.zeros(len(workloads))
        for c in classes:
            replicas[index[c.workload]] += len(c.pods)
        fixed = np.zeros((len(workloads), nn), np.int64)
        for ni in state.infos:
            for name, cnt in ni.workload_counts.items():
                fixed[index[name], ni.index] = cnt
                replicas[index[name]] += cnt
        pair = self.traffic.dense(workloads) / np.maximum(np.outer(replicas, replicas), 1)
        top = float(pair.max()) if pair.size else 0.0
        coef = np.rint(pair / top * _RESOLUTION).astype(np.int64) if top > 0 else pair.astype(
            np.int64)

        m = cp_model.CpModel()
        cap = fit_counts(classes, state)
        cap[~allowed_mask(classes, state)] = 0
        y = [[m.NewIntVar(0, int(min(len(c.pods), cap[e, n])), f"y{e}_{n}") for n in range(nn)]
             for e, c in enumerate(classes)]
        for n, ni in enumerate(state.infos):
            m.Add(sum(y[e][n] * c.cpu_m for e, c in enumerate(classes) if c.cpu_m)
                  <= ni.free_cpu())
            m.Add(sum(y[e][n] * c.memory for e, c in enumerate(classes) if c.memory)
                  <= ni.free_memory())
            m.Add(sum(y[e][n] for e in range(len(classes))) <= ni.free_pods())
        for e, c in enumerate(classes):
            m.Add(sum(y[e]) <= len(c.pods))
        # Workload totals per node (running pods are constants).
        per_w: dict[int, list[int]] = {}
        for e, c in enumerate(classes):
            per_w.setdefault(index[c.workload], []).append(e)
        total_w = [[m.NewIntVar(0, int(replicas[w]), f"Y{w}_{n}") for n in range(nn)]
                   for w in range(len(workloads))]
        for wi in range(len(workloads)):
            for n in range(nn):
                m.Add(total_w[wi][n] == sum(y[e][n] for e in per_w.get(wi, []))
                      + int(fixed[wi, n]))
        local = []
        edges = [(int(a), int(b)) for a, b in zip(*np.nonzero(np.triu(coef, 1)), strict=True)]
        for w, v in edges:
            if replicas[w] == 1 and replicas[v] == 1:
                # Two single pods: one "same node" boolean propagates far better than
                # per-node products (the classic graph-partitioning model).
                same = m.NewBoolVar(f"s{w}_{v}")
                for n in range(nn):
                    m.Add(same <= 1 - total_w[w][n] + total_w[v][n])
                    m.Add(same <= 1 + total_w[w][n] - total_w[v][n])
                m.Add(same <= sum(total_w[w]))
                local.append(int(coef[w, v]) * same)
                continue
            for n in range(nn):
                z = m.NewIntVar(0, int(replicas[w] * replicas[v]), f"z{w}_{v}_{n}")
                m.AddMultiplicationEquality(z, [total_w[w][n], total_w[v][n]])
                local.append(int(coef[w, v]) * z)
        self._break_symmetry(m, y, state, cap, [len(c.pods) for c in classes])
        placed_total = sum(sum(row) for row in y)
        crossing_max = sum(int(coef[w, v]) * int(replicas[w] * replicas[v]) for w, v in edges)
        big = crossing_max + 1
        # Minimise (pods left out) * big + crossing traffic.
        m.Minimize(big * (sum(len(c.pods) for c in classes) - placed_total)
                   + crossing_max - sum(local))

        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = self.time_limit_s
        solver.parameters.num_workers = self.workers
        solver.parameters.random_seed = self.seed
        status = solver.Solve(m)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):  # type: ignore[comparison-overlap]
            raise RuntimeError(f"optimal: CP-SAT found no solution ({solver.StatusName(status)}) "
                               f"within {self.time_limit_s} s")
        assignments: dict[str, str] = {}
        unschedulable: list[str] = []
        for e, c in enumerate(classes):
            it = iter(c.pods)
            for n in range(nn):
                for _ in range(solver.Value(y[e][n])):
                    assignments[next(it).name] = state.infos[n].name
            unschedulable.extend(p.name for p in it)
        objective, bound = solver.ObjectiveValue(), solver.BestObjectiveBound()
        gap = 0.0 if objective <= 0 else max(0.0, (objective - bound) / objective)
        info = {"status": solver.StatusName(status), "gap": gap,
                "objective": objective, "bound": bound}
        return ScheduleResult(assignments, unschedulable, time.perf_counter() - start,
                              order=list(assignments), info=info)

    @staticmethod
    def _break_symmetry(m: cp_model.CpModel, y: list[list[cp_model.IntVar]],
                        state: ClusterState, cap: np.ndarray, sizes: list[int]) -> None:
        groups: dict[object, list[int]] = {}
        for n, ni in enumerate(state.infos):
            if ni.pods:
                continue  # a node with running pods differs from an empty one
            key = (ni.node.signature(), cap[:, n].tobytes())
            groups.setdefault(key, []).append(n)
        single = all(s == 1 for s in sizes)
        for members in groups.values():
            for a, b in itertools.pairwise(members):
                if single:
                    # Order identical nodes by their first pod: pod i may open node b
                    # only if an earlier pod is on the node before it.
                    for i in range(len(y)):
                        m.Add(y[i][b] <= sum(y[j][a] for j in range(i)))
                else:
                    m.Add(sum(row[a] for row in y) >= sum(row[b] for row in y))


def new(*, traffic: TrafficMatrix | None = None, seed: int | None = None,
        time_limit_s: float = 10.0, workers: int = 1) -> OptimalPolicy:
    return OptimalPolicy(traffic, time_limit_s=time_limit_s, workers=workers, seed=seed)
