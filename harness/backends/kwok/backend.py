"""The kwok backend: the real kube-scheduler places, the emulated cluster measures.

kwok nodes run no containers, so the layouts the real schedulers chose are measured
on the same emulated cluster as the local backend's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.backends.base import BackendUnavailable
from harness.backends.emulated.planes import EmulatedPlanes
from harness.backends.k8s.counterparts import require_counterpart
from harness.backends.k8s.hostsched import check_listening
from harness.backends.kwok.placer import KwokPlacer
from results.topology import Topology
from schedulers.spec import KubernetesCounterpart
from settlers.economy import Economy

__all__ = ["KwokOptions", "open_kwok"]


@dataclass(frozen=True)
class KwokOptions:
    nodes: int = 5
    link: str = "edge"  # link preset of the emulated data plane
    # The policies the run will place with: checked here, before the warm-up.
    schedulers: tuple[str, ...] = ()
    # Schedulers the user named for this run (policy -> counterpart), beside the table.
    extra: Mapping[str, KubernetesCounterpart] = field(default_factory=dict)
    # Nodes, labels and links per pair: kwok's nodes carry the same labels.
    topology: Topology | None = None
    # Node CPU capacity (millicores) where the topology gives none: the kwok nodes'
    # allocatable and the emulated cluster's enforced quota; None: nothing enforced.
    node_cpu_m: int | None = None
    cpu_scale: float | None = None
    # Policy -> its options (`scheduler_options`): for a "plugins" counterpart (Diktyo)
    # the same settings its model takes (max_network_cost, weight, sorting).
    scheduler_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def open_kwok(economy: Economy, options: KwokOptions) -> tuple[KwokPlacer, EmulatedPlanes]:
    """The two halves (the registry adds the description), or BackendUnavailable if a
    policy has no real-scheduler counterpart or the Kubernetes binaries are missing
    (fail before the warm-up)."""
    from harness.backends.k8s import K8sBinariesMissing, binaries

    for policy in options.schedulers:
        found = require_counterpart(policy, options.extra, "kwok")
        if found.extender is not None:
            check_listening(found.extender.url)  # the user's extender, before the warm-up
        if found.kind == "plugins":
            from harness.backends.k8s.pluginsched import plugin_binary

            plugin_binary(found)  # built by tools/k8s/build, before the warm-up
    try:
        binaries()
    except K8sBinariesMissing as exc:
        raise BackendUnavailable(
            f"the kwok backend needs the Kubernetes binaries: {exc} (run tools/k8s/build)"
        ) from None
    return (KwokPlacer(economy, options.nodes, options.extra, options.topology,
                       cpu_m=options.node_cpu_m, options=options.scheduler_options),
            EmulatedPlanes(economy, options.nodes, options.link, topology=options.topology,
                           node_cpu_m=options.node_cpu_m, cpu_scale=options.cpu_scale))
