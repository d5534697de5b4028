"""diktyo: kube_default with Diktyo's TopologicalSort (queue) and NetworkOverhead
(filter + score), SIG Scheduling's network-aware plugins (scheduler-plugins
``pkg/networkaware``; Santos et al., IEEE TNSM 2023).

Its AppGroup is the economy (each item depends on its inputs; `schedulers.diktyo.appgroup`)
and its NetworkTopology the cluster's zones and regions with costs from the topology's
delays (`schedulers.diktyo.costs`). The profile is the upstream example's
(``manifests/networktopology/scheduler-config.yaml``: NetworkOverhead at weight 5,
TopologicalSort as the only queue sort) except that NodeResourcesFit stays enabled: the
example disables it so that its spreading score does not pull against co-location, but
it is also the capacity filter, which the testbed's nodes need.

Without an economy there is no AppGroup: every pod is scored equally and the policy is
kube_default (as netmarks without traffic).
"""

from __future__ import annotations

from collections.abc import Mapping

from schedulers.diktyo.appgroup import (
    SORTING_ALGORITHMS,
    AppGroup,
    SortingAlgorithm,
    appgroup_from_economy,
)
from schedulers.diktyo.plugins import NetworkOverhead, TopologicalSort
from schedulers.framework import DEFAULT_QUEUE_JITTER, ProfilePolicy
from schedulers.network import NodeNetwork
from schedulers.policies import kube_default
from schedulers.spec import KubernetesCounterpart, PolicySpec
from schedulers.traffic import TrafficMatrix
from settlers.economy import Economy

__all__ = ["DEFAULT_BIND_LAG", "DEFAULT_MAX_NETWORK_COST", "DEFAULT_QUEUE_CYCLE",
           "DEFAULT_WEIGHT", "NAME", "SPEC", "new"]

NAME = "diktyo"
SPEC = PolicySpec(
    NAME, "kube_default plus Diktyo's TopologicalSort and NetworkOverhead (AppGroup = economy)",
    uses_traffic=True, uses_network=True, uses_economy=True,
    # On a real control plane: a second kube-scheduler built with the two plugins
    # (tools/k8s/build: kube-scheduler-diktyo), one profile named diktyo-scheduler; the
    # harness installs the CRDs and writes the AppGroup and NetworkTopology.
    kubernetes=KubernetesCounterpart(
        "diktyo-scheduler", "plugins", "kube-scheduler with Diktyo's plugins",
        binary="kube-scheduler-diktyo", setup="schedulers.diktyo.manifests:setup"),
)
# NetworkOverhead's weight in the upstream example profile.
DEFAULT_WEIGHT = 5
# Every dependency's maxNetworkCost (cost units = ms of one-way delay, see
# schedulers.diktyo.costs): an `edge` hop between zones (1.5 ms -> 2) is allowed, a
# `wan` hop between regions (10 ms -> 10) is not.
DEFAULT_MAX_NETWORK_COST = 5
# Measured on kwok (kube-scheduler-diktyo at --v=6, 2026-12-02): one scheduling cycle
# ~0.5 ms, a binding visible to NetworkOverhead's pod informer ~20 ms after its
# decision; Deployments are created ~85 ms apart. In units of that gap (the queue's
# time unit, schedulers.diktyo.plugins): how many pods wait together, and how long a
# placed dependency stays invisible.
DEFAULT_QUEUE_CYCLE = 0.01
DEFAULT_BIND_LAG = 0.25


def new(*, traffic: TrafficMatrix | None = None, network: NodeNetwork | None = None,
        economy: Economy | None = None, seed: int | None = None,
        max_network_cost: int = DEFAULT_MAX_NETWORK_COST, weight: int = DEFAULT_WEIGHT,
        sorting: SortingAlgorithm = "ReverseKahn", weights: Mapping[str, int] | None = None,
        queue_jitter: float = DEFAULT_QUEUE_JITTER,
        queue_cycle: float = DEFAULT_QUEUE_CYCLE,
        bind_lag: float = DEFAULT_BIND_LAG) -> ProfilePolicy:
    """``max_network_cost``: every dependency's maxNetworkCost; ``weight``:
    NetworkOverhead's score weight (>= 1); ``sorting``: the AppGroup's
    topologySortingAlgorithm (ReverseKahn: inputs first; KahnSort: consumers first)."""
    if weight < 1:
        raise ValueError(f"diktyo weight must be >= 1, got {weight}")
    if max_network_cost < 0:
        raise ValueError(f"diktyo max_network_cost must be >= 0 (a NetworkTopology cost, "
                         f"ms of one-way delay), got {max_network_cost}")
    if sorting not in SORTING_ALGORITHMS:
        raise ValueError(f"diktyo sorting must be one of {', '.join(SORTING_ALGORITHMS)}, "
                         f"got {sorting!r}")
    group = (appgroup_from_economy(economy, max_network_cost=max_network_cost,
                                   traffic=traffic or None, algorithm=sorting)
             if economy is not None else AppGroup(NAME, (), {}, sorting, {}))
    if not bind_lag >= 0:
        raise ValueError(f"diktyo bind_lag must be >= 0, got {bind_lag}")
    queue = TopologicalSort(group, queue_cycle)
    overhead = NetworkOverhead(group, network, clock=queue, bind_lag=bind_lag)
    return kube_default.new(seed=seed, weights=weights, extra_filters=[overhead],
                            extra_scorers=[(overhead, weight)], tie_break="heap",
                            queue_sort=queue,
                            queue_jitter=queue_jitter,
                            name=NAME)
