"""kube_default: a model of kube-scheduler's default profile.

Filters: NodeUnschedulable, NodeResourcesFit (incl. the pod count),
NodeAffinity (nodeSelector + required terms), TaintToleration (NoSchedule /
NoExecute). Scores with the default weights of
``pkg/scheduler/apis/config/v1/default_plugins.go``; ties among the
top-scoring nodes are broken by kube-scheduler's heap order (no extender) or
uniformly (with one: `extra_scorers` stand for extenders), see
`schedulers.tiebreak`; a single feasible node is taken unscored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from schedulers.framework import (
    DEFAULT_QUEUE_JITTER,
    FilterPlugin,
    ProfilePolicy,
    QueueSortPlugin,
    ScorePlugin,
)
from schedulers.plugins import (
    balanced_allocation,
    image_locality,
    interpod_affinity,
    node_affinity,
    node_resources_fit,
    node_unschedulable,
    pod_topology_spread,
    taint_toleration,
)
from schedulers.spec import KubernetesCounterpart, PolicySpec
from schedulers.tiebreak import FilterRace, TieBreak

__all__ = ["DEFAULT_WEIGHTS", "NAME", "SPEC", "default_filters", "default_scorers", "new"]

NAME = "kube_default"
SPEC = PolicySpec(
    NAME, "a model of kube-scheduler's default profile (filters, weighted scores, ties)",
    kubernetes=KubernetesCounterpart(
        "default-scheduler", "default", "kube-scheduler's default profile"),
)

DEFAULT_WEIGHTS: dict[str, int] = {
    taint_toleration.NAME: 3,
    node_affinity.NAME: 2,
    node_resources_fit.NAME: 1,
    pod_topology_spread.NAME: 2,
    interpod_affinity.NAME: 2,
    balanced_allocation.NAME: 1,
    image_locality.NAME: 1,
}


def default_filters() -> list[FilterPlugin]:
    return [node_unschedulable.new(), node_resources_fit.new(), node_affinity.new(),
            taint_toleration.new()]


def default_scorers(weights: Mapping[str, int] | None = None) -> list[tuple[ScorePlugin, int]]:
    w = {**DEFAULT_WEIGHTS, **(weights or {})}
    unknown = set(w) - set(DEFAULT_WEIGHTS)
    if unknown:
        raise ValueError(f"unknown score plugin(s) {sorted(unknown)}; "
                         f"known: {sorted(DEFAULT_WEIGHTS)}")
    plugins: list[ScorePlugin] = [
        taint_toleration.new(), node_affinity.new(), node_resources_fit.new(),
        pod_topology_spread.new(), interpod_affinity.new(), balanced_allocation.new(),
        image_locality.new(),
    ]
    return [(p, w[p.name]) for p in plugins]


def new(*, seed: int | None = None, weights: Mapping[str, int] | None = None,
        extra_scorers: Sequence[tuple[ScorePlugin, int]] = (),
        queue_jitter: float = DEFAULT_QUEUE_JITTER, percentage_of_nodes_to_score: int = 0,
        name: str = NAME, tie_break: TieBreak | None = None,
        filter_race: FilterRace | None = None,
        extra_filters: Sequence[FilterPlugin] = (),
        queue_sort: QueueSortPlugin | None = None) -> ProfilePolicy:
    """The default profile; ``extra_filters``/``extra_scorers`` are out-of-tree plugins
    (or extenders) added after the defaults, ``queue_sort`` replaces PrioritySort."""
    # kube-scheduler randomises ties only on its extender code path.
    how: TieBreak = tie_break or ("random" if extra_scorers else "heap")
    return ProfilePolicy(name, [*default_filters(), *extra_filters],
                         [*default_scorers(weights), *extra_scorers],
                         seed=seed, queue_jitter=queue_jitter,
                         percentage_of_nodes_to_score=percentage_of_nodes_to_score,
                         tie_break=how, filter_race=filter_race, queue_sort=queue_sort)
