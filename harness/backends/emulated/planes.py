"""The emulated cluster as a backend's data plane: one `EmulatedCluster` per protocol.

The local and kwok backends measure every layout here, and so does the kubernetes
backend when its nodes are kwok's fakes (through ``kubernetes.emulated``, which maps
the cluster's node names onto the emulated ones).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from harness.backends.base import DataPlane
from results.topology import Topology
from settlers.economy import Economy
from settlers.wire import WireProtocol

__all__ = ["EmulatedPlanes"]


class EmulatedPlanes:
    """Starts the emulated cluster: ``nodes`` emulated nodes behind ``link``."""

    def __init__(self, economy: Economy, nodes: int, link: str,
                 run_dir: Path | None = None, topology: Topology | None = None, *,
                 node_cpu_m: int | None = None, cpu_scale: float | None = None) -> None:
        self._economy = economy
        self._topology = topology
        # Node capacity enforced on the pods (emulated.capacity); None: off.
        self._node_cpu_m = node_cpu_m
        self._cpu_scale = cpu_scale
        self._nodes = nodes
        self._link = link
        # None lets the cluster pick a scratch directory of its own: its logs and
        # Prometheus data are not results and must not bloat the results directory.
        self._run_dir = run_dir

    async def start(self, protocol: WireProtocol, placement: Mapping[str, str]) -> DataPlane:
        from harness.backends.emulated.cluster import ClusterSpec, EmulatedCluster

        spec = ClusterSpec(
            nodes=self._nodes,
            link=self._link,
            economy=self._economy,
            protocol=protocol,
            run_dir=None if self._run_dir is None else self._run_dir / f"cluster-{protocol}",
            topology=self._topology,
            node_cpu_m=self._node_cpu_m,
            cpu_scale=self._cpu_scale,
        )
        cluster: DataPlane = await EmulatedCluster.start(spec, placement)
        return cluster

    async def close(self) -> None:
        # Each cluster is stopped by whoever started it (the experiment, per protocol).
        return None
