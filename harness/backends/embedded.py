"""The embedded default backend: the Python scheduler models place, the emulated cluster runs.

Placement is pure computation (``schedulers``), so 1000 redeployments take seconds;
the data plane is ``harness.backends.local.EmulatedCluster`` (real producer processes
behind an emulated mesh), relaid out for every layout measured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.backends.base import DataPlane, Placement, WireProtocol
from settlers.economy import Economy

if TYPE_CHECKING:
    from schedulers import TrafficMatrix

__all__ = ["LocalBackend", "ModelPlacement"]


class ModelPlacement:
    """Placements from the Python scheduler models on N identical nodes."""

    def __init__(self, economy: Economy, nodes: int) -> None:
        import schedulers

        self._nodes = schedulers.uniform_nodes(nodes)
        self._pods = schedulers.pods_for_economy(economy)

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self._nodes]

    @property
    def pod_names(self) -> list[str]:
        return [p.name for p in self._pods]

    def canonical(self, assignments: Mapping[str, str]) -> str:
        import schedulers

        return str(schedulers.canonical_layout(dict(assignments), self._nodes))

    async def place(
        self,
        scheduler: str,
        deployments: int,
        *,
        traffic: TrafficMatrix | None,
        seed: int,
        advance: Callable[[int], None] = lambda n: None,
    ) -> list[Placement]:
        import schedulers

        policy = schedulers.get_policy(scheduler, traffic=traffic, seed=seed)
        out: list[Placement] = []
        batch = 50
        for start in range(0, deployments, batch):
            n = min(batch, deployments - start)
            # A thread keeps the event loop (and any running cluster's proxies) alive
            # while the CPU-bound models run.
            results = await asyncio.to_thread(self._schedule_many, policy, n)
            for offset, result in enumerate(results):
                out.append(
                    Placement(
                        scheduler=scheduler,
                        deployment=start + offset,
                        assignments=dict(result.assignments),
                        seconds=float(result.seconds),
                        unschedulable=tuple(result.unschedulable),
                    )
                )
            advance(n)
        return out


    def _schedule_many(self, policy: Any, n: int) -> list[Any]:
        return [policy.schedule(self._pods, self._nodes) for _ in range(n)]


class LocalBackend(ModelPlacement):
    name = "local"

    def __init__(
        self, economy: Economy, nodes: int, link: str, run_dir: Path | None = None
    ) -> None:
        super().__init__(economy, nodes)
        self._economy = economy
        self._nodes_n = nodes
        self._link = link
        # None lets the cluster pick a scratch directory of its own: its logs and
        # Prometheus data are not results and must not bloat the results directory.
        self._run_dir = run_dir

    async def start_data_plane(
        self, protocol: WireProtocol, placement: Mapping[str, str]
    ) -> DataPlane:
        from harness.backends.local import ClusterSpec, EmulatedCluster

        spec = ClusterSpec(
            nodes=self._nodes_n,
            link=self._link,
            economy=self._economy,
            protocol=protocol,
            run_dir=None if self._run_dir is None else self._run_dir / f"cluster-{protocol}",
        )
        cluster: DataPlane = await EmulatedCluster.start(spec, placement)
        return cluster

    async def close(self) -> None:
        return None
