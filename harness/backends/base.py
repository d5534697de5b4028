"""What a backend gives the experiment: placements under a scheduler, and a data plane.

The experiment loop (``harness.experiment``) never knows which backend it drives.
A backend splits into the two halves the method needs:

- *placement*: redeploy the whole economy N times under a named scheduler and report
  where every pod landed (the Python models, the real kube-scheduler on kwok, or a
  real cluster's schedulers);
- *data plane*: a running copy of the economy that can be put into a given layout,
  accepts orders, and counts the bytes its mesh carried between workloads and nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pandas as pd

    from schedulers import TrafficMatrix

__all__ = [
    "TELEMETRY_KEYS",
    "Backend",
    "BackendUnavailable",
    "DataPlane",
    "Placement",
    "WireProtocol",
]

WireProtocol = Literal["http", "grpc"]

# Columns of DataPlane.traffic_snapshot() that identify a counter; the value column
# is "bytes". Cumulative, so the bytes of an interval are the difference of two.
TELEMETRY_KEYS = ["source_workload", "destination_workload", "src_node", "dst_node"]


class BackendUnavailable(RuntimeError):
    """The chosen backend cannot run here; the message says what is missing."""


@dataclass(frozen=True)
class Placement:
    """One redeployment: where each pod landed, and how long the scheduler took."""

    scheduler: str
    deployment: int
    assignments: Mapping[str, str]
    seconds: float
    unschedulable: tuple[str, ...] = field(default=())


@runtime_checkable
class DataPlane(Protocol):
    """A running economy that can be relaid out and measured (an EmulatedCluster).

    A data plane whose entries are not reachable from here (a real cluster) may also
    offer ``run_sweep`` with the signature of ``order_app.run_sweep``; the experiment
    then orders through it.
    """

    node_names: list[str]
    placement: dict[str, str]
    prometheus_url: str | None

    async def relayout(self, placement: Mapping[str, str]) -> None: ...

    def entry(self, item: str) -> str: ...

    def traffic_snapshot(self) -> pd.DataFrame: ...

    async def stop(self) -> None: ...


class Backend(Protocol):
    name: str

    @property
    def node_names(self) -> list[str]: ...

    @property
    def pod_names(self) -> list[str]: ...

    def canonical(self, assignments: Mapping[str, str]) -> str:
        """The layout with identical nodes made interchangeable."""
        ...

    async def place(
        self,
        scheduler: str,
        deployments: int,
        *,
        traffic: TrafficMatrix | None,
        seed: int,
        advance: Callable[[int], None] = ...,
    ) -> list[Placement]:
        """Redeploy ``deployments`` times under ``scheduler``; ``advance(n)`` reports progress."""
        ...

    async def start_data_plane(
        self, protocol: WireProtocol, placement: Mapping[str, str]
    ) -> DataPlane: ...

    async def close(self) -> None: ...
