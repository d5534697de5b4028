"""firmament: min-cost-flow batch placement with a network-aware cost model.

Cost of sending one pod of workload w to node n (see schedulers.flownet):

* network: the traffic the pod would exchange *across* nodes with the pods
  already placed, ``sum_v A[w,v] * (placed_v - placed_v_on_n)``, where
  ``A[w,v] = between(w,v) / (replicas_w * replicas_v)`` is one pod pair's share;
  scaled so that the busiest single pod's total traffic costs ``NET_SCALE``;
* load: the k-th extra pod on a node pays ``load_weight * NET_SCALE *
  utilisation after it`` (dominant of CPU and memory, non-zero requests).

A one-shot flow cannot see that two pods of the same batch talk to each other,
so pods are committed in rounds whose sizes grow geometrically (1, ..., all):
each round re-solves for every pending pod with the costs of what is fixed so
far and commits the units the network pulls hardest (the largest advantage
over the class's average node); the last round commits everything. ``rounds=1``
is a single classic Firmament batch.

With ``reschedule=True`` the running pods are first re-solved in one flow
where staying costs the continuation (its network cost) and moving adds
``migration_weight * NET_SCALE``; moves are reported as migrations.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np

from schedulers.classes import PodClass, allowed_mask, fit_counts, pod_classes
from schedulers.flownet import FlowProblem, solve
from schedulers.framework import ScheduleResult
from schedulers.model import Node, Pod
from schedulers.spec import KubernetesCounterpart, PolicySpec
from schedulers.state import ClusterState, nonzero_requests
from schedulers.traffic import TrafficMatrix

__all__ = ["NAME", "NET_SCALE", "SPEC", "FirmamentPolicy", "new", "round_targets"]

NAME = "firmament"
SPEC = PolicySpec(
    NAME, "min-cost-flow batches with a network-aware cost model", uses_traffic=True,
    kubernetes=KubernetesCounterpart(
        "firmament", "custom", "firmament scheduler",
        # --settle: one redeployment's pods trickle in over ~1 s; wait for them all,
        # so each redeployment is one batch like the Python model's.
        host_command=("firmament", "--interval", "0.2", "--settle", "0.5"),
        chart_key="firmament"),
    # Dynamic scenarios: this policy with reschedule=True; its migrations are the moves.
    rebalancer="firmament",
)
NET_SCALE = 1000


def round_targets(pending: int, rounds: int) -> list[int]:
    """Cumulative pods committed after each round: floor(M^(k/R)), increasing, last = M."""
    out: list[int] = []
    for k in range(1, rounds + 1):
        target = pending if k == rounds else math.floor(pending ** (k / rounds))
        out.append(min(pending, max(target, (out[-1] + 1) if out else 1)))
    return out


class _Costs:
    """Per-round cost model over the workloads of this scheduling problem."""

    def __init__(self, traffic: TrafficMatrix, workloads: list[str], replicas: np.ndarray,
                 load_weight: float) -> None:
        self.index = {w: i for i, w in enumerate(workloads)}
        dense = traffic.dense(workloads)
        self.pair = dense / np.outer(replicas, replicas)      # one pod pair's bytes/s
        volume = self.pair @ replicas                          # one pod's total bytes/s
        self.volume = volume
        top = float(volume.max()) if len(volume) else 0.0
        # Denormal rates would overflow the scale: below a byte per day is no traffic.
        self.scale = NET_SCALE / top if top > 1e-5 else 0.0
        self.load_scale = load_weight * NET_SCALE
        self.unscheduled = int(10 * (NET_SCALE + self.load_scale)) + 1

    def network(self, placed: np.ndarray) -> np.ndarray:
        """(W, N) float: bytes/s one more pod of w on n would send across nodes."""
        out: np.ndarray = self.pair @ (placed.sum(axis=1, keepdims=True) - placed)
        return out

    def slots(self, state: ClusterState, classes: Sequence[PodClass], total: int,
              largest: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(N, S) slot costs and capacities, sized for the largest (or smallest) pending pod.

        Sized for the largest, every flow fits; sized for the smallest (the final
        catch-up rounds), placements are checked one by one when committed.
        The first slots take one pod each (exact convex load cost); beyond what a
        node could plausibly get (twice an even share, at least 16) slots double in
        width and charge the cost of their last pod, which keeps 1000-node graphs
        small while over- rather than under-charging crowding.
        """
        pick = max if largest else min
        ref_cpu = pick(nonzero_requests(c.pods[0])[0] for c in classes)
        ref_mem = pick(nonzero_requests(c.pods[0])[1] for c in classes)
        big = PodClass((), "", pick(c.cpu_m for c in classes), pick(c.memory for c in classes))
        room = fit_counts([big], state)[0]
        width = int(min(max(int(room.max()), 0), total))
        unit = min(width, max(16, 2 * -(-total // max(len(state.infos), 1))))
        ends = list(range(1, unit + 1))
        step = 2
        while ends and ends[-1] < width:
            ends.append(min(width, ends[-1] + step))
            step *= 2
        k = np.array(ends, np.int64)
        cpu = np.array([ni.node.cpu_m for ni in state.infos], np.float64)
        mem = np.array([ni.node.memory for ni in state.infos], np.float64)
        used_cpu = np.array([ni.nonzero_cpu for ni in state.infos], np.float64)
        used_mem = np.array([ni.nonzero_memory for ni in state.infos], np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            u_cpu = np.where(cpu[:, None] > 0, (used_cpu[:, None] + k * ref_cpu) / cpu[:, None], 0)
            u_mem = np.where(mem[:, None] > 0, (used_mem[:, None] + k * ref_mem) / mem[:, None], 0)
        cost = np.rint(self.load_scale * np.maximum(u_cpu, u_mem)).astype(np.int64)
        starts = np.concatenate(([0], k[:-1]))
        cap = np.clip(np.minimum(k[None, :], room[:, None]) - starts[None, :], 0, None)
        return cost, cap.astype(np.int64)


class FirmamentPolicy:
    name = NAME
    deterministic = True

    def __init__(self, traffic: TrafficMatrix | None = None, *, rounds: int = 6,
                 load_weight: float = 0.5, reschedule: bool = False,
                 migration_weight: float = 0.25) -> None:
        if rounds < 1:
            raise ValueError(f"firmament needs at least one round, got {rounds}")
        if load_weight < 0 or migration_weight < 0:
            raise ValueError("firmament weights must be >= 0")
        self.traffic = traffic if traffic is not None else TrafficMatrix()
        self.rounds = rounds
        self.load_weight = load_weight
        self.reschedule = reschedule
        self.migration_weight = migration_weight

    def schedule(self, pods: Sequence[Pod], nodes: Sequence[Node], *,
                 running: Sequence[tuple[Pod, str]] = ()) -> ScheduleResult:
        start = time.perf_counter()
        # The flow solver and the commit order break ties by position, so the layout
        # must not depend on the order the pods come in: the real binder gets them in
        # the API's list order (by name), the model in the economy's. Sorted, both place
        # alike (bench/fidelity.py --policy firmament; docs/kubernetes.md).
        pods = sorted(pods, key=lambda p: (p.workload, p.name))
        state = ClusterState(nodes)
        state.bind_all(running)
        workloads = sorted({p.workload for p in pods} | {p.workload for p, _ in running})
        replicas = np.zeros(len(workloads))
        index = {w: i for i, w in enumerate(workloads)}
        for p in [*pods, *(p for p, _ in running)]:
            replicas[index[p.workload]] += 1
        costs = _Costs(self.traffic, workloads, replicas, self.load_weight)
        placed = np.zeros((len(workloads), len(state.infos)), np.float64)
        for ni in state.infos:
            for w, c in ni.workload_counts.items():
                placed[costs.index[w], ni.index] = c

        migrations = self._migrate(state, costs, placed, running) if self.reschedule else []
        assignments: dict[str, str] = {}
        order: list[str] = []
        pending = list(pods)
        targets = round_targets(len(pending), self.rounds) if pending else []
        committed = 0
        for r, target in enumerate(targets):
            last = r == len(targets) - 1
            done = self._round(state, costs, placed, pending, target - committed, last,
                               assignments, order, largest=True)
            committed += done
            pending = [p for p in pending if p.name not in assignments]
            if not pending:
                break
        # Slots are sized for the largest pending pod; smaller ones may still fit.
        for _ in range(3):
            if not pending:
                break
            if not self._round(state, costs, placed, pending, len(pending), True,
                               assignments, order, largest=False):
                break
            pending = [p for p in pending if p.name not in assignments]
        return ScheduleResult(assignments, [p.name for p in pending],
                              time.perf_counter() - start, order=order, migrations=migrations,
                              info={"rounds": len(targets)})

    # -- one batch -------------------------------------------------------------------
    def _problem(self, state: ClusterState, costs: _Costs, placed: np.ndarray,
                 classes: list[PodClass], extra: np.ndarray | None = None,
                 largest: bool = True) -> FlowProblem:
        widx = np.array([costs.index[c.workload] for c in classes])
        net = costs.network(placed)[widx]
        arc_cost = np.rint(np.clip(net * costs.scale, 0, 10 * NET_SCALE)).astype(np.int64)
        if extra is not None:
            arc_cost += extra
        supply = np.array([len(c.pods) for c in classes], np.int64)
        cap = np.minimum(fit_counts(classes, state), supply[:, None])
        cap[~allowed_mask(classes, state)] = 0
        # A pod that fits nowhere must not shrink every node's slots to zero.
        placeable = [c for c, row in zip(classes, cap, strict=True) if row.any()] or classes
        slot_cost, slot_cap = costs.slots(state, placeable, int(supply.sum()), largest)
        return FlowProblem(supply, arc_cost, cap, slot_cost, slot_cap,
                           np.full(len(classes), costs.unscheduled, np.int64))

    def _round(self, state: ClusterState, costs: _Costs, placed: np.ndarray,
               pending: list[Pod], commit: int, last: bool, assignments: dict[str, str],
               order: list[str], largest: bool) -> int:
        classes = pod_classes(pending)
        problem = self._problem(state, costs, placed, classes, largest=largest)
        solution = solve(problem)
        ee, nn = np.nonzero(solution.placed)
        counts = solution.placed[ee, nn]
        ee, nn = np.repeat(ee, counts), np.repeat(nn, counts)
        if not last:
            # Commit first what the network pulls hardest; break ties by the pod's
            # traffic volume (heaviest talkers anchor the layout), then class/node order.
            cost = problem.arc_cost.astype(np.float64)
            allowed = problem.arc_cap > 0
            mean = np.where(allowed, cost, 0).sum(1) / np.maximum(allowed.sum(1), 1)
            advantage = mean[ee] - cost[ee, nn]
            vol = costs.volume[[costs.index[classes[e].workload] for e in ee]]
            pick = np.lexsort((nn, ee, -vol, -advantage))[:commit]
            ee, nn = ee[pick], nn[pick]
        next_pod = [0] * len(classes)
        done = 0
        for e, n in zip(ee.tolist(), nn.tolist(), strict=True):
            cls = classes[e]
            pod = cls.pods[next_pod[e]]
            ni = state.infos[n]
            if not ni.fits(pod):
                continue  # stays pending; a later round retries it
            next_pod[e] += 1
            state.bind(pod, ni.name)
            placed[costs.index[pod.workload], n] += 1
            assignments[pod.name] = ni.name
            order.append(pod.name)
            done += 1
        return done

    # -- rescheduling ----------------------------------------------------------------
    def _migrate(self, state: ClusterState, costs: _Costs, placed: np.ndarray,
                 running: Sequence[tuple[Pod, str]]) -> list[tuple[str, str, str]]:
        if not running:
            return []
        home = {p.name: node for p, node in running}
        # Costs are judged against the current layout (pods included), then every
        # running pod is lifted and re-placed by one flow.
        net = costs.network(placed)
        for p, node in running:
            state.unbind(p)
            placed[costs.index[p.workload], state.by_name[node].index] -= 1
        groups: dict[tuple[object, str], PodClass] = {}
        for p, node in running:
            for cls in pod_classes([p]):
                key = (cls.key, node)
                groups.setdefault(key, PodClass(cls.key, cls.workload, cls.cpu_m, cls.memory))
                groups[key].pods.append(p)
        classes = list(groups.values())
        homes = [state.by_name[home[c.pods[0].name]].index for c in classes]
        move = round(self.migration_weight * NET_SCALE)
        extra = np.full((len(classes), len(state.infos)), move, np.int64)
        extra[np.arange(len(classes)), homes] = 0
        widx = np.array([costs.index[c.workload] for c in classes])
        problem = self._problem(state, costs, placed, classes, extra)
        problem.arc_cost = np.rint(np.clip(net[widx] * costs.scale, 0, 10 * NET_SCALE)
                                   ).astype(np.int64) + extra
        problem.unscheduled_cost[:] = 100 * costs.unscheduled  # never evict
        solution = solve(problem)
        # Everyone goes home first; then the flow's proposed moves are applied one by
        # one, best first, each re-checked against the layout as it now is: pods
        # moving at once cannot see each other (two partners would just swap).
        proposals: list[tuple[float, Pod, int, int]] = []
        for e, cls in enumerate(classes):
            h = homes[e]
            dests = [d for d in np.nonzero(solution.placed[e])[0].tolist() if d != h
                     for _ in range(int(solution.placed[e, d]))]
            for pod, dest in zip(cls.pods, dests, strict=False):
                gain = float(problem.arc_cost[e, h] - problem.arc_cost[e, dest])
                proposals.append((gain, pod, h, dest))
            for pod in cls.pods:
                state.bind(pod, state.infos[h].name)
                placed[costs.index[pod.workload], h] += 1
        proposals.sort(key=lambda t: (-t[0], t[1].name))
        migrations: list[tuple[str, str, str]] = []
        for _, pod, h, dest in proposals:
            w = costs.index[pod.workload]
            now = costs.pair[w] @ (placed.sum(axis=1, keepdims=True) - placed)
            if (now[h] - now[dest]) * costs.scale <= move or not state.infos[dest].fits(pod):
                continue
            state.unbind(pod)
            state.bind(pod, state.infos[dest].name)
            placed[w, h] -= 1
            placed[w, dest] += 1
            migrations.append((pod.name, state.infos[h].name, state.infos[dest].name))
        return migrations


def new(*, traffic: TrafficMatrix | None = None, seed: int | None = None, rounds: int = 6,
        load_weight: float = 0.5, reschedule: bool = False,
        migration_weight: float = 0.25) -> FirmamentPolicy:
    del seed  # deterministic: the solver breaks ties the same way every time
    return FirmamentPolicy(traffic, rounds=rounds, load_weight=load_weight,
                           reschedule=reschedule, migration_weight=migration_weight)
