"""The policy interface, and kube-scheduler's one-pod-at-a-time cycle built on plugins.

A *policy* takes pods and nodes (plus pods already running) and returns where
each pod goes. Sequential policies are *profiles*, as in kube-scheduler's
framework: filter plugins, score plugins with weights, and the best-scoring
node, ties broken the way kube-scheduler breaks them (`schedulers.tiebreak`).

A score plugin does PreScore + Score + NormalizeScore at once: it returns one
integer in [0, 100] per feasible node, or ``None`` for "Skip" (no vote).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from schedulers.model import Node, Pod
from schedulers.state import ClusterState, NodeInfo
from schedulers.tiebreak import FilterRace, TieBreak, pick

__all__ = [
    "DEFAULT_QUEUE_JITTER",
    "FilterPlugin",
    "Policy",
    "ProfilePolicy",
    "QueueSortPlugin",
    "ScheduleResult",
    "ScorePlugin",
    "num_feasible_nodes_to_find",
    "queue_arrivals",
    "queue_order",
]

MAX_NODE_SCORE = 100
# Std-dev of a pod's queue arrival, in units of the gap between two Deployment
# creations (see queue_order and docs/schedulers.md).
DEFAULT_QUEUE_JITTER = 0.6


@dataclass
class ScheduleResult:
    """Where each pod went (pod name -> node name) and what could not be placed."""

    assignments: dict[str, str]
    unschedulable: list[str]
    seconds: float
    order: list[str] = field(default_factory=list)  # pods in the order they were decided
    migrations: list[tuple[str, str, str]] = field(default_factory=list)  # pod, from, to
    info: dict[str, Any] = field(default_factory=dict)  # policy specifics (e.g. optimality gap)


@runtime_checkable
class Policy(Protocol):
    name: str
    # True when the same input always gives the same placement (no seed involved).
    deterministic: bool

    def schedule(self, pods: Sequence[Pod], nodes: Sequence[Node], *,
                 running: Sequence[tuple[Pod, str]] = ()) -> ScheduleResult: ...


class FilterPlugin(Protocol):
    name: str

    def filter(self, pod: Pod, ni: NodeInfo, state: ClusterState) -> str | None:
        """``None`` if ``pod`` may run on the node, else the reason it may not."""


class ScorePlugin(Protocol):
    name: str

    def score(self, pod: Pod, feasible: list[NodeInfo],
              state: ClusterState) -> list[int] | None:
        """Normalised scores in [0, 100] for each feasible node, or ``None`` (Skip)."""


class QueueSortPlugin(Protocol):
    """Replaces PrioritySort: from the pods in arrival order with their arrival times
    (``queue_arrivals``), the order they leave the queue (e.g. Diktyo's TopologicalSort)."""

    name: str

    def order(self, arrivals: list[tuple[float, Pod]]) -> list[Pod]: ...


def queue_order(pods: Sequence[Pod], rng: random.Random,
                jitter: float = DEFAULT_QUEUE_JITTER) -> list[Pod]:
    """The order in which pods created together leave kube-scheduler's queue.

    PrioritySort pops by priority, then by the time the pod entered the queue.
    Deployments applied together (in list order) are created one after another,
    but each pod is created later by the deployment and ReplicaSet controllers,
    which run several workers in parallel; so pods arrive roughly in Deployment
    order with a random shift. We model the arrival time of a pod of the k-th
    Deployment as k + N(0, jitter); replicas of one Deployment arrive together.
    ``jitter=0`` is exact creation order.
    """
    return [pod for _, pod in queue_arrivals(pods, rng, jitter)]


def queue_arrivals(pods: Sequence[Pod], rng: random.Random,
                   jitter: float = DEFAULT_QUEUE_JITTER) -> list[tuple[float, Pod]]:
    """``queue_order``'s pods with their arrival times (in units of the gap between two
    Deployment creations), for a queue sort that needs to know who waits together."""
    arrival: dict[str, float] = {}
    keyed = []
    for i, pod in enumerate(pods):
        if pod.workload not in arrival:
            shift = rng.gauss(0.0, jitter) if jitter > 0 else 0.0
            arrival[pod.workload] = len(arrival) + shift
        # One ReplicaSet creates its pods in a burst: they share the shift and keep
        # their order (ties broken by list position).
        keyed.append((-pod.priority, arrival[pod.workload], i, pod))
    keyed.sort(key=lambda t: (t[0], t[1], t[2]))
    return [(t[1], t[3]) for t in keyed]


def num_feasible_nodes_to_find(num_all: int, percentage: int = 0) -> int:
    """kube-scheduler's adaptive percentageOfNodesToScore (all nodes below 100)."""
    if num_all < 100:
        return num_all
    if percentage == 0:
        percentage = max(5, 50 - num_all // 125)
    return max(100, num_all * percentage // 100)


class ProfilePolicy:
    """Filter, score with weights, take the best; one pod at a time.

    ``tie_break="heap"`` is kube-scheduler without extenders (the feasible nodes,
    in the order `filter_race` gives them, go through Go's heap); ``"random"`` is
    kube-scheduler with a prioritize extender: uniform among the best.
    """

    deterministic = False

    def __init__(self, name: str, filters: Sequence[FilterPlugin],
                 scorers: Sequence[tuple[ScorePlugin, int]], *, seed: int | None = None,
                 queue_jitter: float = DEFAULT_QUEUE_JITTER,
                 percentage_of_nodes_to_score: int = 0, tie_break: TieBreak = "heap",
                 filter_race: FilterRace | None = None,
                 queue_sort: QueueSortPlugin | None = None) -> None:
        if tie_break not in ("heap", "random"):
            raise ValueError(f"{name}: tie_break must be 'heap' or 'random', got {tie_break!r}")
        for plugin, weight in scorers:
            if weight < 0:
                raise ValueError(f"{name}: plugin {plugin.name} has negative weight {weight}")
        self.name = name
        self.filters = list(filters)
        self.scorers = [(p, w) for p, w in scorers if w > 0]
        self.rng = random.Random(seed)
        self.queue_jitter = queue_jitter
        self.percentage = percentage_of_nodes_to_score
        self.tie_break: TieBreak = tie_break
        self.filter_race = filter_race if filter_race is not None else FilterRace()
        self.queue_sort = queue_sort

    def schedule(self, pods: Sequence[Pod], nodes: Sequence[Node], *,
                 running: Sequence[tuple[Pod, str]] = ()) -> ScheduleResult:
        start = time.perf_counter()
        state = ClusterState(nodes)
        state.bind_all(running)
        arrivals = queue_arrivals(pods, self.rng, self.queue_jitter)
        order = ([p for _, p in arrivals] if self.queue_sort is None
                 else self.queue_sort.order(arrivals))
        assignments: dict[str, str] = {}
        unschedulable: list[str] = []
        next_start = 0
        n = len(state.infos)
        want = num_feasible_nodes_to_find(n, self.percentage)
        for pod in order:
            feasible: list[NodeInfo] = []
            checked = 0
            # Like findNodesThatPassFilters: start where the last cycle stopped and
            # stop once enough feasible nodes are found.
            for j in range(n):
                ni = state.infos[(next_start + j) % n]
                checked += 1
                if self._passes(pod, ni, state):
                    feasible.append(ni)
                    if len(feasible) >= want:
                        break
            next_start = (next_start + checked) % n if n else 0
            if not feasible:
                unschedulable.append(pod.name)
                continue
            chosen = feasible[0] if len(feasible) == 1 else self._select(pod, feasible, state)
            state.bind(pod, chosen.name)
            assignments[pod.name] = chosen.name
        return ScheduleResult(assignments, unschedulable, time.perf_counter() - start,
                              order=[p.name for p in order])

    def _passes(self, pod: Pod, ni: NodeInfo, state: ClusterState) -> bool:
        return all(f.filter(pod, ni, state) is None for f in self.filters)

    def _select(self, pod: Pod, feasible: list[NodeInfo], state: ClusterState) -> NodeInfo:
        if self.tie_break == "heap":
            # The heap sees the nodes in the order the parallel Filter step found them.
            feasible = self.filter_race.order(feasible, self.rng)
        totals = [0] * len(feasible)
        for plugin, weight in self.scorers:
            scores = plugin.score(pod, feasible, state)
            if scores is None:
                continue
            for i, s in enumerate(scores):
                totals[i] += s * weight
        return feasible[pick(totals, self.tie_break, self.rng)]
