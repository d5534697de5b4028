"""The `kubernetes` backend: the experiment against a real cluster, through the chart.

Composed, as every backend (``harness.backends.base``), of

- a placer (`KubernetesPlacer`): the cluster's schedulers place the producers;
- a data-plane factory (`KubernetesPlanes`): the producers pinned to a layout's nodes
  (``items.<item>.nodes`` -> spec.nodeName) with the order app run *inside* the
  cluster as the chart's order-app Job (`KubernetesDataPlane`); or, when the nodes
  are kwok's fakes (they run no containers), the emulated cluster on this machine.

Both halves share one `Release`: the release is uninstalled at close(), on Ctrl-C
(close() runs from the experiment's exit stack while asyncio.run unwinds) and, as a
last resort, at interpreter exit or SIGTERM.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from harness.backends.base import BackendUnavailable, DataPlane
from harness.backends.kubernetes.dataplane import KubernetesDataPlane
from harness.backends.kubernetes.helm import Helm
from harness.backends.kubernetes.options import KubernetesOptions
from harness.backends.kubernetes.placer import KubernetesPlacer
from harness.backends.kubernetes.release import Release
from settlers.economy import Economy
from settlers.wire import WireProtocol

__all__ = ["KubernetesPlanes", "open_kubernetes"]


class KubernetesPlanes:
    """Measurement with pinned layouts: in the cluster, or emulated on kwok's nodes."""

    def __init__(self, release: Release) -> None:
        self.release = release

    @property
    def emulated(self) -> bool:
        """Whether layouts are measured on the emulated data plane (see `data_plane`)."""
        mode = self.release.options.data_plane
        if mode not in ("auto", "cluster", "emulated"):
            raise BackendUnavailable(f"data_plane must be auto, cluster or emulated, not {mode!r}")
        if mode == "auto":
            return self.release.nodes_are_fake()
        return mode == "emulated"

    async def start(self, protocol: WireProtocol, placement: Mapping[str, str]) -> DataPlane:
        if self.emulated:
            from harness.backends.kubernetes.emulated import start_emulated

            return await start_emulated(self.release.economy, self.release.node_names,
                                        protocol, placement, link=self.release.options.link)
        plane = KubernetesDataPlane(self.release, protocol)
        await plane.relayout(placement)
        return plane

    async def close(self) -> None:
        await asyncio.to_thread(self.release.cleanup)


def open_kubernetes(economy: Economy, options: KubernetesOptions | None = None,
                    *, helm: Helm | None = None) -> tuple[KubernetesPlacer, KubernetesPlanes]:
    """The two halves on one release (the registry adds the description). Connects to
    the cluster (BackendUnavailable if it cannot be used); nothing is installed until
    the first placement."""
    release = Release(economy, options, helm=helm)
    return KubernetesPlacer(release), KubernetesPlanes(release)
