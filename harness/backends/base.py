"""What a backend gives the experiment: placements under a scheduler, and a data plane.

The experiment loop (``harness.experiment``) never knows which backend it drives.
A backend is composed of the two halves the method needs, plus what it says it is:

- a *placer*: redeploy the whole economy N times under a named scheduler and report
  where every pod landed (the Python models, the real kube-scheduler on kwok, or a
  real cluster's schedulers);
- a *data-plane factory*: starts a running copy of the economy that can be put into a
  given layout, accepts orders, and counts the bytes its mesh carried between
  workloads and nodes;
- a *description*: what places and what measures, in words (a
  `results.manifest.BackendDescription`: the manifest records it, the report states it).

Capabilities only some halves have are Protocols of their own (`SweepsInCluster`,
`ReportsPodStatus`, `DescribesTraffic`, `MovesThroughApi`, `MovesPods`), checked with
``isinstance``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from results.manifest import BackendDescription
from settlers.wire import WireProtocol

if TYPE_CHECKING:
    import pandas as pd

    from schedulers import TrafficMatrix
    from schedulers.creation import CreationOrder

__all__ = [
    "TELEMETRY_KEYS",
    "Backend",
    "BackendUnavailable",
    "DataPlane",
    "DataPlaneFactory",
    "DescribesTraffic",
    "MoveResult",
    "MovesPods",
    "MovesThroughApi",
    "Placement",
    "Placer",
    "ReportsPodStatus",
    "SweepsInCluster",
]

# Columns of DataPlane.traffic_snapshot() that identify a counter; the value column
# is "bytes". Cumulative, so the bytes of an interval are the difference of two.
TELEMETRY_KEYS = ["source_workload", "destination_workload", "src_node", "dst_node"]


class BackendUnavailable(RuntimeError):
    """The chosen backend cannot run here; the message says what is missing."""


@dataclass(frozen=True)
class Placement:
    """One redeployment: where each pod landed, how long the scheduler took, and the
    order in which its Deployments were created (empty: not known)."""

    scheduler: str
    deployment: int
    assignments: Mapping[str, str]
    seconds: float
    unschedulable: tuple[str, ...] = field(default=())
    creation_order: tuple[str, ...] = field(default=())


@runtime_checkable
class DataPlane(Protocol):
    """A running economy that can be relaid out and measured (an EmulatedCluster)."""

    node_names: list[str]
    placement: dict[str, str]
    prometheus_url: str | None

    async def relayout(self, placement: Mapping[str, str]) -> None: ...

    def entry(self, item: str) -> str: ...

    def traffic_snapshot(self) -> pd.DataFrame: ...

    async def stop(self) -> None: ...


@runtime_checkable
class SweepsInCluster(Protocol):
    """A data plane whose entries are not reachable from here (a real cluster) runs the
    order sweep itself, with the signature of ``order_app.run_sweep``."""

    def run_sweep(
        self, targets: Mapping[str, str], protocol: WireProtocol, items: Sequence[str],
        sizes: Sequence[int], *, count: int, repeat: int, warmup: int, progress: bool,
    ) -> Awaitable[pd.DataFrame]: ...


@runtime_checkable
class ReportsPodStatus(Protocol):
    """A data plane that can tell whether its pods still run (the emulated cluster)."""

    def pod_status(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class MoveResult:
    """One pod moved to another node: the old pod is replaced by a new one there.
    Times are ``time.monotonic()``: ``ready`` when the new pod was ready (None if it
    never was), ``done`` when the old pod was gone (when the move gave up, if it
    failed before). So an evict has ``done < ready``: the service had no pod between."""

    pod: str
    new_pod: str
    workload: str
    src_node: str
    dst_node: str
    strategy: str   # "make-before-break" | "evict"
    started: float
    ready: float | None
    done: float
    ok: bool
    error: str = ""


@runtime_checkable
class MovesPods(Protocol):
    """A data plane whose running pods can move between nodes and whose links can
    change (the emulated cluster); scenarios need it."""

    async def move(self, pod: str, node: str, *, make_before_break: bool = True,
                   new_pod: str | None = None, grace_s: float = 5.0) -> MoveResult: ...

    async def degrade(self, node: str, *, latency_ms: float | None = None,
                      bandwidth_mbps: float | None = None) -> None: ...


class DataPlaneFactory(Protocol):
    """Starts data planes, one at a time (one per wire protocol)."""

    async def start(self, protocol: WireProtocol, placement: Mapping[str, str]) -> DataPlane: ...

    async def close(self) -> None: ...


class Placer(Protocol):
    """Redeploys the economy under a scheduler; knows the layout space it places in."""

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
        order: CreationOrder = ...,
    ) -> list[Placement]:
        """Redeploy ``deployments`` times under ``scheduler``, each redeployment creating
        the Deployments in ``order``'s order for it (default: the economy's order) and
        recording it; ``advance(n)`` reports progress."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class DescribesTraffic(Protocol):
    """A placer that runs schedulers of its own says how it fed them traffic."""

    def traffic_description(self, scheduler: str, traffic: TrafficMatrix | None) -> str: ...


@runtime_checkable
class MovesThroughApi(Protocol):
    """A placer that keeps one deployment and moves its pods through the Kubernetes
    API (the kwok backend): the scenario's moves happen there first, then on the data
    plane. Pod names are the emulated ones (``<item>-<i>``), as in `Placement`."""

    async def deploy(self, scheduler: str, *, traffic: TrafficMatrix | None,
                     seed: int) -> Placement:
        """Deploy the economy once under ``scheduler`` and keep it (and the scheduler's
        processes) until `undeploy`."""
        ...

    async def move(self, pod: str, node: str) -> tuple[str, str]:
        """Evict ``pod``, bind its replacement to ``node``; (replacement's name, node)."""
        ...

    async def cordon(self, node: str, on: bool = True) -> None: ...

    async def undeploy(self) -> None: ...


@dataclass(frozen=True)
class Backend:
    """A placer, a data-plane factory and a description: what `harness run` drives."""

    description: BackendDescription
    placer: Placer
    planes: DataPlaneFactory

    @property
    def name(self) -> str:
        return self.description.name

    async def close(self) -> None:
        """Close the placer, then the data-plane factory (each is idempotent)."""
        try:
            await self.placer.close()
        finally:
            await self.planes.close()
