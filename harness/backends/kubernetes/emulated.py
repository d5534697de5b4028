"""Measuring layouts on kwok: the placements are the cluster's, the data plane is emulated.

kwok nodes run no containers, so a layout placed by the real schedulers cannot be
measured in the cluster. Instead, as the kwok backend does, the layout is executed
by the emulated cluster (`harness.backends.emulated`): real producer
processes behind an emulated mesh on this machine. The emulated nodes are called
node-1..N; the cluster's node names are mapped onto them in sorted order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from harness.backends.base import DataPlane
from settlers.economy import Economy
from settlers.wire import WireProtocol

__all__ = ["EmulatedDataPlane", "start_emulated"]


@dataclass
class EmulatedDataPlane:
    """An EmulatedCluster seen through the cluster's node names."""

    inner: DataPlane
    to_emulated: dict[str, str]

    def __post_init__(self) -> None:
        self.from_emulated = {v: k for k, v in self.to_emulated.items()}
        self.node_names: list[str] = sorted(self.to_emulated)
        self.prometheus_url: str | None = self.inner.prometheus_url
        self.placement: dict[str, str] = self._current()

    def _current(self) -> dict[str, str]:
        return {pod: self.from_emulated[n] for pod, n in self.inner.placement.items()}

    async def relayout(self, placement: Mapping[str, str]) -> None:
        await self.inner.relayout(self._map(placement))
        self.placement = self._current()

    def entry(self, item: str) -> str:
        return self.inner.entry(item)

    def traffic_snapshot(self) -> pd.DataFrame:
        frame = self.inner.traffic_snapshot()
        for col in ("src_node", "dst_node"):
            if col in frame:
                frame[col] = frame[col].map(lambda n: self.from_emulated.get(n, n))
        return frame

    async def stop(self) -> None:
        await self.inner.stop()

    def _map(self, placement: Mapping[str, str]) -> dict[str, str]:
        unknown = sorted(set(placement.values()) - set(self.to_emulated))
        if unknown:
            raise ValueError(f"placement names nodes outside the cluster: {', '.join(unknown)}")
        return {pod: self.to_emulated[node] for pod, node in placement.items()}


async def start_emulated(economy: Economy, nodes: list[str], protocol: WireProtocol,
                         placement: Mapping[str, str], *, link: str) -> EmulatedDataPlane:
    """Start the emulated cluster with one emulated node per cluster node."""
    from harness.backends.emulated.planes import EmulatedPlanes

    to_emulated = {name: f"node-{i}" for i, name in enumerate(sorted(nodes), start=1)}
    mapped = {pod: to_emulated[node] for pod, node in placement.items()}
    cluster = await EmulatedPlanes(economy, len(nodes), link).start(protocol, mapped)
    return EmulatedDataPlane(cluster, to_emulated)
