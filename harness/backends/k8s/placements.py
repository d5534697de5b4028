"""Redeploy an economy on a kwok cluster and record where the real scheduler put each pod.

This is the placement half of the kwok backend: every round creates one Deployment per
item (replicas and requests from the economy), one after another in the round's
creation order (default: the economy's topological order; `schedulers.creation`), waits until
the scheduler named `scheduler_name` has bound every pod, reads pod -> node back from
the API, and deletes the Deployments again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.backends.k8s.cluster import KwokCluster
from harness.backends.k8s.workloads import (
    DeploymentSpec,
    bound_placement,
    create_deployments,
    delete_deployments,
    delete_namespace,
    wait_bound,
)
from settlers.economy import Economy

__all__ = [
    "PlacementRound",
    "collect_placements",
    "collect_rounds",
    "economy_deployments",
    "place_once",
]


@dataclass(frozen=True)
class PlacementRound:
    """One redeployment: pod (``<item>-<i>``) -> node, wall time create -> all bound, and
    the order the Deployments were created in."""

    assignments: dict[str, str]
    seconds: float
    creation_order: tuple[str, ...] = ()


def economy_deployments(economy: Economy,
                        order: Sequence[str] | None = None,
                        pod_labels: Mapping[str, Mapping[str, str]] | None = None,
                        ) -> list[DeploymentSpec]:
    """One DeploymentSpec per item, with the economy's replicas and requests, in
    ``order`` (item names; default: the economy's order); ``pod_labels``: item -> extra
    labels of its pods (e.g. Diktyo's AppGroup labels)."""
    specs = {
        item.name: DeploymentSpec(
            name=item.name,
            replicas=item.replicas,
            cpu_m=item.resources.cpu_m,
            memory=item.resources.memory,
            labels=(pod_labels or {}).get(item.name),
        )
        for item in economy
    }
    if order is None:
        return list(specs.values())
    if sorted(order) != sorted(specs):
        raise ValueError(f"creation order {', '.join(order)} is not a permutation of the "
                         f"economy's items {', '.join(specs)}")
    return [specs[name] for name in order]


def place_once(
    cluster: KwokCluster,
    economy: Economy,
    scheduler_name: str,
    namespace: str,
    *,
    timeout: float = 60.0,
    order: Sequence[str] | None = None,
    pod_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> PlacementRound:
    """Deploy the economy once into `namespace`, creating its Deployments one after
    another in ``order`` (default: the economy's), read the placement, clean up."""
    specs = economy_deployments(economy, order, pod_labels)
    t0 = time.perf_counter()
    try:
        create_deployments(cluster, namespace, specs, scheduler_name)
        pods = wait_bound(cluster, namespace, sum(s.replicas for s in specs), timeout)
        seconds = time.perf_counter() - t0
        return PlacementRound(bound_placement(pods), seconds,
                              tuple(spec.name for spec in specs))
    finally:
        delete_deployments(cluster, namespace, timeout)


def collect_placements(
    cluster: KwokCluster,
    economy: Economy,
    scheduler_name: str = "default-scheduler",
    n: int = 1,
    *,
    namespace: str | None = None,
    timeout: float = 60.0,
    advance: Callable[[int], None] | None = None,
) -> list[dict[str, str]]:
    """`n` redeployments under `scheduler_name`; returns one pod -> node dict per round.

    Uses (and finally deletes) a fresh namespace unless `namespace` is given.
    ``advance(1)`` is called after each round (e.g. a rich progress bar's advance).
    """
    return [
        r.assignments
        for r in collect_rounds(
            cluster,
            economy,
            scheduler_name,
            n,
            namespace=namespace,
            timeout=timeout,
            advance=advance,
        )
    ]


def collect_rounds(
    cluster: KwokCluster,
    economy: Economy,
    scheduler_name: str = "default-scheduler",
    n: int = 1,
    *,
    namespace: str | None = None,
    timeout: float = 60.0,
    advance: Callable[[int], None] | None = None,
    orders: Callable[[int], Sequence[str]] | None = None,
    pod_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> list[PlacementRound]:
    """Like `collect_placements`, with each round's scheduling time; ``orders(i)`` gives
    round i's creation order (default: the economy's order in every round);
    ``pod_labels``: item -> extra labels of its pods."""
    if n < 0:
        raise ValueError(f"number of redeployments must be >= 0, got {n}")
    core: Any = cluster.core_v1()
    own_ns = namespace is None
    ns = namespace or f"place-{uuid.uuid4().hex[:8]}"
    if own_ns:
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    try:
        rounds = []
        for i in range(n):
            rounds.append(place_once(cluster, economy, scheduler_name, ns, timeout=timeout,
                                     order=None if orders is None else orders(i),
                                     pod_labels=pod_labels))
            if advance is not None:
                advance(1)
        return rounds
    finally:
        if own_ns:
            delete_namespace(cluster, ns, timeout)
