"""The layout space every placer shares: the economy's pods, the nodes, canonical layouts.

The local and kwok backends place on N identical model nodes; the kubernetes backend
on the cluster's real nodes. Either way, two placements that differ only by swapping
identical nodes are one layout (``schedulers.canonical_layout``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from settlers.economy import Economy

if TYPE_CHECKING:
    from results.topology import Topology
    from schedulers import Node, Pod
    from schedulers.creation import CreationOrder

__all__ = ["LayoutSpace"]


class LayoutSpace:
    """The economy's pods on ``nodes``."""

    def __init__(self, economy: Economy, nodes: Sequence[Node]) -> None:
        import schedulers

        self.nodes: list[Node] = list(nodes)
        # In the economy's order; `pods_in` reorders them for one redeployment.
        self.pods: list[Pod] = schedulers.pods_for_economy(economy)
        self.workloads: list[str] = [item.name for item in economy]

    @classmethod
    def uniform(cls, economy: Economy, nodes: int, cpu_m: int | None = None) -> LayoutSpace:
        """``nodes`` identical nodes ``node-1`` .. ``node-N`` (the models' cluster), of
        ``cpu_m`` millicores allocatable (None: the models' default)."""
        import schedulers

        if cpu_m is None:
            return cls(economy, schedulers.uniform_nodes(nodes))
        return cls(economy, schedulers.uniform_nodes(nodes, cpu_m=cpu_m))

    @classmethod
    def for_topology(cls, economy: Economy, nodes: int, topology: Topology | None,
                     cpu_m: int | None = None) -> LayoutSpace:
        """The topology's nodes, labels and capacities (None: ``uniform(nodes)``, as today);
        ``cpu_m`` for the nodes the topology gives no CPU (None: the models' default).

        Nodes differing in labels or capacity are not interchangeable, and links follow
        labels, so canonical layouts keep apart exactly the nodes whose links differ."""
        if topology is None:
            return cls.uniform(economy, nodes, cpu_m)
        if cpu_m is None:
            return cls(economy, topology.model_nodes())
        return cls(economy, topology.model_nodes(cpu_m=cpu_m))

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.nodes]

    @property
    def pod_names(self) -> list[str]:
        return [p.name for p in self.pods]

    def creation_order(self, order: CreationOrder, deployment: int) -> tuple[str, ...]:
        """The Deployments in the order redeployment ``deployment`` creates them."""
        return order.for_deployment(deployment, self.workloads)

    def pods_in(self, creation_order: Sequence[str]) -> list[Pod]:
        """The pods in the order their Deployments are created (the scheduler's queue)."""
        from schedulers.creation import in_creation_order

        return in_creation_order(self.pods, creation_order)

    def canonical(self, assignments: Mapping[str, str]) -> str:
        import schedulers

        return str(schedulers.canonical_layout(dict(assignments), self.nodes))
