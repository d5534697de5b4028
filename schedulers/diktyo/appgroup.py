"""Diktyo's AppGroup, derived from the economy: which workload depends on which.

Upstream (diktyo-io/appgroup-api v1alpha1) an AppGroup lists workloads, each with its
dependencies (``maxNetworkCost``, ``minBandwidth``), and its controller writes
``status.topologyOrder``: every workload with an ``index`` from a topological sort of the
dependency graph, which TopologicalSort reads. No controller runs here, so this module
is the controller: the testbed computes the order and writes it.

The mapping: one workload per economy item (selector = the item's name); its
dependencies are its inputs (the items it calls for its raw materials). Every
dependency gets the same ``maxNetworkCost`` (a policy setting) and, when the warm-up's
traffic is known, ``minBandwidth`` = the bytes/s measured between the pair (recorded for
the reader: NetworkOverhead does not read it, its README defers bandwidth "to a later
stage").

Sorting (``topologySortingAlgorithm``): ``KahnSort`` is Kahn's algorithm over the edges
consumer -> input, starting from the workloads nothing depends on (the README's Online
Boutique order starts with the frontend, which depends on every other service); ties
in the economy's order. ``ReverseKahn`` is that order backwards: inputs first. With
dependencies pointing from consumer to input only ``ReverseKahn`` lets a pod find its
dependencies already placed, which is all NetworkOverhead looks at; hence the default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    from schedulers.traffic import TrafficMatrix
    from settlers.economy import Economy

__all__ = [
    "SORTING_ALGORITHMS",
    "AppGroup",
    "Dependency",
    "SortingAlgorithm",
    "appgroup_from_economy",
    "kahn_order",
]

SortingAlgorithm = Literal["ReverseKahn", "KahnSort"]
SORTING_ALGORITHMS: tuple[SortingAlgorithm, ...] = get_args(SortingAlgorithm)


@dataclass(frozen=True)
class Dependency:
    """One edge: the dependant may be placed at most ``max_network_cost`` from it."""

    workload: str
    max_network_cost: int
    min_bandwidth: float | None = None  # bytes/s; None = not known (omitted)


@dataclass(frozen=True)
class AppGroup:
    """Workloads (in the economy's order), their dependencies and the topology order."""

    name: str
    workloads: tuple[str, ...]
    dependencies: Mapping[str, tuple[Dependency, ...]]
    algorithm: SortingAlgorithm
    # status.topologyOrder: workload -> index (1-based; lower leaves the queue first).
    order: Mapping[str, int]

    def dependencies_of(self, workload: str) -> tuple[Dependency, ...]:
        """``GetDependencyList``: empty for a workload without any or outside the group."""
        return self.dependencies.get(workload, ())

    def index(self, workload: str) -> int:
        """``FindPodOrder``: the workload's index, -1 when it is not in the order."""
        return self.order.get(workload, -1)

    def __contains__(self, workload: object) -> bool:
        return workload in self.order


def kahn_order(workloads: Sequence[str], dependencies: Mapping[str, Sequence[str]]
               ) -> list[str]:
    """Kahn's algorithm over consumer -> dependency edges: workloads nothing depends on
    first, each dependency once all its dependants are out; FIFO, ties in ``workloads``'
    order. ValueError on a cycle."""
    position = {w: i for i, w in enumerate(workloads)}
    dependants = {w: 0 for w in workloads}
    for w in workloads:
        for d in dependencies.get(w, ()):
            if d not in position:
                raise ValueError(f"{w} depends on {d!r}, which is not a workload")
            dependants[d] += 1
    ready = [w for w in workloads if dependants[w] == 0]
    out: list[str] = []
    while ready:
        w = ready.pop(0)
        out.append(w)
        freed = []
        for d in dependencies.get(w, ()):
            dependants[d] -= 1
            if dependants[d] == 0:
                freed.append(d)
        ready.extend(sorted(freed, key=position.__getitem__))
    if len(out) != len(workloads):
        stuck = sorted(set(workloads) - set(out), key=position.__getitem__)
        raise ValueError(f"dependency cycle among {', '.join(stuck)}")
    return out


def appgroup_from_economy(economy: Economy, *, max_network_cost: int,
                          traffic: TrafficMatrix | None = None,
                          algorithm: SortingAlgorithm = "ReverseKahn",
                          name: str | None = None) -> AppGroup:
    """The economy as an AppGroup named ``name`` (default: the economy's name)."""
    if algorithm not in SORTING_ALGORITHMS:
        raise ValueError(f"unknown topology sorting algorithm {algorithm!r}; "
                         f"known: {', '.join(SORTING_ALGORITHMS)}")
    if max_network_cost < 0:
        raise ValueError(f"maxNetworkCost must be >= 0, got {max_network_cost}")
    workloads = tuple(economy.names)
    deps: dict[str, tuple[Dependency, ...]] = {}
    for item in economy:
        deps[item.name] = tuple(
            Dependency(src, max_network_cost,
                       _bandwidth(traffic, item.name, src))
            for src in item.inputs)
    kahn = kahn_order(workloads, {w: [d.workload for d in ds] for w, ds in deps.items()})
    ordered = kahn if algorithm == "KahnSort" else kahn[::-1]
    return AppGroup(name or economy.name, workloads, deps, algorithm,
                    {w: i + 1 for i, w in enumerate(ordered)})


def _bandwidth(traffic: TrafficMatrix | None, a: str, b: str) -> float | None:
    if traffic is None:
        return None
    rate = traffic.between(a, b)
    return rate if rate > 0 else None
