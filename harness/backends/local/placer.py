"""The local backend's placer: the Python scheduler models on N identical nodes.

Placement is pure computation (``schedulers``), so 1000 redeployments take seconds.
Each redeployment hands the model its pods in the order their Deployments are created
(``--order``, `schedulers.creation`); the model adds kube-scheduler's queue jitter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from harness.backends.base import Placement
from harness.backends.layoutspace import LayoutSpace
from schedulers.creation import FILE_ORDER, CreationOrder
from settlers.economy import Economy

if TYPE_CHECKING:
    from results.topology import Topology
    from schedulers import TrafficMatrix
    from schedulers.network import NodeNetwork

__all__ = ["ModelPlacer"]


class ModelPlacer:
    """Placements from the Python scheduler models on N identical nodes."""

    def __init__(self, economy: Economy, nodes: int, topology: Topology | None = None,
                 cpu_m: int | None = None,
                 options: Mapping[str, Mapping[str, Any]] | None = None,
                 network: NodeNetwork | None = None) -> None:
        self.space = LayoutSpace.for_topology(economy, nodes, topology, cpu_m)
        self.economy = economy
        # Delay and bandwidth between the nodes, for policies that weigh them (None:
        # the topology's, or a flat network when there is none).
        self.network = network if network is not None else (
            topology.network() if topology is not None else None)
        # Policy -> options for its model's new() (the config's scheduler_options).
        self.options = {k: dict(v) for k, v in (options or {}).items()}

    @property
    def node_names(self) -> list[str]:
        return self.space.node_names

    @property
    def pod_names(self) -> list[str]:
        return self.space.pod_names

    def canonical(self, assignments: Mapping[str, str]) -> str:
        return self.space.canonical(assignments)

    async def place(
        self,
        scheduler: str,
        deployments: int,
        *,
        traffic: TrafficMatrix | None,
        seed: int,
        advance: Callable[[int], None] = lambda n: None,
        order: CreationOrder = FILE_ORDER,
    ) -> list[Placement]:
        import schedulers

        policy = schedulers.get_policy(scheduler, traffic=traffic, seed=seed,
                                       network=self.network, economy=self.economy,
                                       **self.options.get(scheduler, {}))
        out: list[Placement] = []
        batch = 50
        for start in range(0, deployments, batch):
            n = min(batch, deployments - start)
            orders = [self.space.creation_order(order, d) for d in range(start, start + n)]
            # A thread keeps the event loop (and any running cluster's proxies) alive
            # while the CPU-bound models run.
            results = await asyncio.to_thread(self._schedule_many, policy, orders)
            for offset, (result, created) in enumerate(zip(results, orders, strict=True)):
                out.append(
                    Placement(
                        scheduler=scheduler,
                        deployment=start + offset,
                        assignments=dict(result.assignments),
                        seconds=float(result.seconds),
                        unschedulable=tuple(result.unschedulable),
                        creation_order=created,
                    )
                )
            advance(n)
        return out

    def _schedule_many(self, policy: Any, orders: list[tuple[str, ...]]) -> list[Any]:
        # The pods reach the model's queue in their Deployments' creation order.
        return [policy.schedule(self.space.pods_in(o), self.space.nodes) for o in orders]

    async def close(self) -> None:
        return None
