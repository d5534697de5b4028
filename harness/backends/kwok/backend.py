"""The kwok backend: the real kube-scheduler places, the emulated cluster measures.

kwok nodes run no containers, so the layouts the real schedulers chose are measured
on the same emulated cluster as the local backend's.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.backends.base import BackendUnavailable
from harness.backends.emulated.planes import EmulatedPlanes
from harness.backends.kwok.placer import KWOK_SCHEDULERS, KwokPlacer
from settlers.economy import Economy

__all__ = ["KwokOptions", "open_kwok"]


@dataclass(frozen=True)
class KwokOptions:
    nodes: int = 5
    link: str = "edge"  # link preset of the emulated data plane
    # The policies the run will place with: checked here, before the warm-up.
    schedulers: tuple[str, ...] = ()


def open_kwok(economy: Economy, options: KwokOptions) -> tuple[KwokPlacer, EmulatedPlanes]:
    """The two halves (the registry adds the description), or BackendUnavailable if a
    policy has no real-scheduler counterpart or the Kubernetes binaries are missing
    (fail before the warm-up)."""
    from harness.backends.k8s import K8sBinariesMissing, binaries

    unsupported = [s for s in options.schedulers if s not in KWOK_SCHEDULERS]
    if unsupported:
        raise BackendUnavailable(
            f"no real-scheduler counterpart on the kwok backend for "
            f"{', '.join(unsupported)}; choose from {', '.join(KWOK_SCHEDULERS)}"
        )
    try:
        binaries()
    except K8sBinariesMissing as exc:
        raise BackendUnavailable(
            f"the kwok backend needs the Kubernetes binaries: {exc} (run tools/k8s/build)"
        ) from None
    return (KwokPlacer(economy, options.nodes),
            EmulatedPlanes(economy, options.nodes, options.link))
