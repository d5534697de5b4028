"""optimal: the exact minimum of inter-node traffic under the capacity constraints (CP-SAT).

Every pending pod p gets booleans ``x[p,n]`` (at most one node). A call from
workload w to v picks one of v's pods uniformly and comes from w's pods evenly,
so the traffic of the pair (w,v) that stays local is
``A[w,v] * #{(p, q) in w x v on the same node}`` with ``A = between(w,v) /
(replicas_w * replicas_v)`` (the same quantity ``inter_node_traffic`` measures).
For every communicating pod pair one boolean ``same[p,q]`` is bounded by
``1 - |x[p,n] - x[q,n]|`` on every node (the graph-partitioning model, which
propagates far better than products of counts); running pods are constants.
The model maximises the local traffic; a pod left out costs more than any
traffic. Symmetry breaking: with single-pod workloads, identical empty nodes
are ordered by their first pod; otherwise their pod counts are non-increasing
and the replicas of a class take nodes in index order. The search starts from
firmament's placement (relabelled to fit the symmetry breaking) and never
returns anything worse. ``info`` reports the solver status, objective, bound
and optimality gap; a time limit bounds the search. With one pod per workload
(the default economy) small clusters are solved to proven optimality in well
under a second; with replicas the bound stays weak and the gap is reported as is.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence

import numpy as np
from ortools.sat.python import cp_model

from schedulers.classes import allowed_mask, fit_counts, pod_classes
from schedulers.framework import ScheduleResult
from schedulers.layout import inter_node_traffic
from schedulers.model import Node, Pod
from schedulers.spec import PolicySpec
from schedulers.state import ClusterState
from schedulers.traffic import TrafficMatrix

__all__ = ["NAME", "SPEC", "OptimalPolicy", "new"]

NAME = "optimal"
SPEC = PolicySpec(
    NAME, "CP-SAT: the fewest bytes crossing nodes (a bound, with its gap)", uses_traffic=True)
_RESOLUTION = 1_000_000  # the largest pod-pair coefficient, after integer scaling


class OptimalPolicy:
    name = NAME
    deterministic = True

    def __init__(self, traffic: TrafficMatrix | None = None, *, time_limit_s: float = 10.0,
                 workers: int = 1, seed: int | None = None) -> None:
        self.traffic = traffic if traffic is not None else TrafficMatrix()
        self.time_limit_s = time_limit_s
        self.workers = workers
        self.seed = 0 if seed is None else seed
        self._units_per_byte = 0.0  # objective units per byte/s of crossing traffic

    def schedule(self, pods: Sequence[Pod], nodes: Sequence[Node], *,
                 running: Sequence[tuple[Pod, str]] = ()) -> ScheduleResult:
        start = time.perf_counter()
        state = ClusterState(nodes)
        state.bind_all(running)
        classes = pod_classes(pods)
        nn = len(state.infos)
        replicas: dict[str, int] = dict(state.workload_totals)
        for p in pods:
            replicas[p.workload] = replicas.get(p.workload, 0) + 1

        m = cp_model.CpModel()
        cap = fit_counts(classes, state)
        cap[~allowed_mask(classes, state)] = 0
        # x[i][n] for pending pods (in class order), constants for running ones.
        pending: list[Pod] = [p for c in classes for p in c.pods]
        class_of = [e for e, c in enumerate(classes) for _ in c.pods]
        x: list[list[cp_model.IntVar | int]] = []
        for i in range(len(pending)):
            row: list[cp_model.IntVar | int] = [
                m.NewBoolVar(f"x{i}_{n}") if cap[class_of[i], n] > 0 else 0 for n in range(nn)]
            m.AddAtMostOne([v for v in row if not isinstance(v, int)])
            x.append(row)
        placed = [sum(row) for row in x]
        for n, ni in enumerate(state.infos):
            m.Add(sum(x[i][n] * p.cpu_m for i, p in enumerate(pending) if p.cpu_m)
                  <= ni.free_cpu())
            m.Add(sum(x[i][n] * p.memory for i, p in enumerate(pending) if p.memory)
                  <= ni.free_memory())
            m.Add(sum(x[i][n] for i in range(len(pending))) <= ni.free_pods())
        fixed = [(p, state.by_name[node].index) for p, node in running]

        coef = self._pair_coefficients(replicas)
        local: list[cp_model.LinearExprT] = []
        crossing_max = 0
        partners: list[list[cp_model.IntVar]] = [[] for _ in pending]
        for i, p in enumerate(pending):
            for j in range(i + 1, len(pending)):
                c = coef.get((p.workload, pending[j].workload), 0)
                if c:
                    crossing_max += c
                    same = self._same(m, x[i], x[j], placed[i], placed[j])
                    partners[i].append(same)
                    partners[j].append(same)
                    local.append(c * same)
            for q, n in fixed:
                c = coef.get((p.workload, q.workload), 0)
                if c:
                    crossing_max += c
                    local.append(c * x[i][n])
        # A redundant cut that tightens the bound a lot when capacity binds: a pod
        # shares a node with at most (the most pods any node can hold - 1) others.
        most = int(cap.sum(axis=0).max()) if cap.size else 0
        most += max((len(ni.pods) for ni in state.infos), default=0)
        for group in partners:
            if len(group) >= most:
                m.Add(sum(group) <= max(most - 1, 0))
        groups = self._break_symmetry(m, x, classes, state, cap)
        guess = self._hint(m, x, pending, nodes, running, state, groups,
                           [len(c.pods) for c in classes])
        big = crossing_max + 1
        m.Minimize(big * (len(pending) - sum(placed)) + crossing_max - sum(local))

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
        for p, row in zip(pending, x, strict=True):
            where = [n for n, v in enumerate(row) if not isinstance(v, int) and solver.Value(v)]
            if where:
                assignments[p.name] = state.infos[where[0]].name
            else:
                unschedulable.append(p.name)
        objective, bound = solver.ObjectiveValue(), solver.BestObjectiveBound()
        info: dict[str, object] = {"status": solver.StatusName(status)}
        if status != cp_model.OPTIMAL:  # type: ignore[comparison-overlap]
            # A search cut short may end below its own starting point (the hint is not
            # always kept as incumbent): never answer worse than the heuristic did.
            workload = {p.name: p.workload for p in [*pending, *(q for q, _ in running)]}
            fixed_names = {q.name: node for q, node in running}

            def key(placed: dict[str, str], left: int) -> tuple[int, float]:
                crossing, _ = inter_node_traffic({**fixed_names, **placed}, self.traffic,
                                                 workload.__getitem__)
                return left, crossing

            if key(guess.assignments, len(guess.unschedulable)) < key(assignments,
                                                                    len(unschedulable)):
                assignments, unschedulable = dict(guess.assignments), list(guess.unschedulable)
                crossing, _ = inter_node_traffic({**fixed_names, **assignments}, self.traffic,
                                                 workload.__getitem__)
                objective = len(unschedulable) * big + crossing * self._units_per_byte
                info["kept_heuristic_start"] = True
        gap = 0.0 if objective <= 0 else max(0.0, (objective - bound) / objective)
        info.update({"gap": gap, "objective": objective, "bound": bound})
        return ScheduleResult(assignments, unschedulable, time.perf_counter() - start,
                              order=list(assignments), info=info)

    def _hint(self, m: cp_model.CpModel, x: list[list[cp_model.IntVar | int]],
              pending: list[Pod], nodes: Sequence[Node], running: Sequence[tuple[Pod, str]],
              state: ClusterState, groups: list[list[int]], sizes: list[int]) -> ScheduleResult:
        """Start from firmament's placement: the search then only has to improve on it.

        With replicas the bound is weak and the time limit usually ends the search;
        the hint makes the answer at least as good as the heuristic's. It is first
        relabelled to satisfy the symmetry-breaking constraints.
        """
        from schedulers.policies.firmament import FirmamentPolicy

        guess = FirmamentPolicy(self.traffic).schedule(pending, nodes, running=running)
        index = {ni.name: ni.index for ni in state.infos}
        where = [index.get(guess.assignments.get(p.name, ""), -1) for p in pending]
        single = all(s == 1 for s in sizes)
        for members in groups:
            if single:  # nodes in the order their first pod appears
                seen = [n for n in dict.fromkeys(where) if n in members]
                order = seen + [n for n in members if n not in seen]
            else:  # fullest first
                order = sorted(members, key=lambda n: -where.count(n))
            relabel = dict(zip(order, members, strict=True))
            where = [relabel.get(n, n) for n in where]
        if not single:  # replicas of a class in node order (unplaced ones last)
            first = 0
            for size in sizes:
                block = where[first:first + size]
                where[first:first + size] = sorted(block, key=lambda n: (n < 0, n))
                first += size
        for row, node in zip(x, where, strict=True):
            for n, v in enumerate(row):
                if not isinstance(v, int):
                    m.AddHint(v, int(n == node))
        return guess

    def _pair_coefficients(self, replicas: dict[str, int]) -> dict[tuple[str, str], int]:
        """Integer weight of one pod pair of each communicating workload pair."""
        share = {(w, v): f / (replicas[w] * replicas[v])
                 for w in replicas for v, f in self.traffic.neighbours(w).items()
                 if v in replicas}
        top = max(share.values(), default=0.0)
        self._units_per_byte = _RESOLUTION / top if top > 0 else 0.0
        if top <= 0:
            return {}
        return {k: c for k, s in share.items() if (c := round(s / top * _RESOLUTION)) > 0}

    @staticmethod
    def _same(m: cp_model.CpModel, a: list[cp_model.IntVar | int],
              b: list[cp_model.IntVar | int], placed_a: cp_model.LinearExprT,
              placed_b: cp_model.LinearExprT) -> cp_model.IntVar:
        same = m.NewBoolVar("")
        for xa, xb in zip(a, b, strict=True):
            if isinstance(xa, int) and isinstance(xb, int):
                continue  # neither may use this node: no constraint needed
            m.Add(same <= 1 - xa + xb)
            m.Add(same <= 1 + xa - xb)
        m.Add(same <= placed_a)
        m.Add(same <= placed_b)
        return same

    @staticmethod
    def _break_symmetry(m: cp_model.CpModel, x: list[list[cp_model.IntVar | int]],
                        classes: Sequence[object], state: ClusterState,
                        cap: np.ndarray) -> list[list[int]]:
        """Order interchangeable nodes and replicas; returns the groups of identical nodes."""
        groups: dict[object, list[int]] = {}
        for n, ni in enumerate(state.infos):
            if ni.pods:
                continue  # a node with running pods differs from an empty one
            key = (ni.node.signature(), cap[:, n].tobytes())
            groups.setdefault(key, []).append(n)
        sizes = [len(c.pods) for c in classes]  # type: ignore[attr-defined]
        single = all(s == 1 for s in sizes)
        for members in groups.values():
            for a, b in itertools.pairwise(members):
                if single:
                    # Order identical nodes by their first pod: pod i may open node b
                    # only if an earlier pod is on the node before it.
                    for i in range(len(x)):
                        m.Add(x[i][b] <= sum(x[j][a] for j in range(i)))
                else:
                    m.Add(sum(row[a] for row in x) >= sum(row[b] for row in x))
        if single:
            return list(groups.values())
        # Replicas of one class are interchangeable: they take nodes in index order.
        # (Valid together with ordering node counts: relabelling replicas keeps counts.)
        first = 0
        for size in sizes:
            for i in range(first, first + size - 1):
                m.Add(sum(n * v for n, v in enumerate(x[i]))
                      <= sum(n * v for n, v in enumerate(x[i + 1])))
            first += size
        return list(groups.values())


def new(*, traffic: TrafficMatrix | None = None, seed: int | None = None,
        time_limit_s: float = 10.0, workers: int = 1) -> OptimalPolicy:
    return OptimalPolicy(traffic, time_limit_s=time_limit_s, workers=workers, seed=seed)
