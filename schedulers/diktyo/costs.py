"""Diktyo's NetworkTopology, derived from the cluster: costs between zones and regions.

Upstream (diktyo-io/networktopology-api v1alpha1) the NetworkTopology holds, per
``weights`` entry (ours: ``UserDefined``, the plugin's default ``weightsName``), a cost
for every ordered pair of regions (topology key ``topology.kubernetes.io/region``) and of
zones (``topology.kubernetes.io/zone``). Costs are integers given by the user (or a
netperf DaemonSet); NetworkOverhead adds its own constants: 0 on the same node, 1 in the
same zone, 100 when a cost is missing or the other node has neither label.

Ours come from the testbed's network (``schedulers.network.NodeNetwork``, the
topology's one-way delays): the cost of a pair of zones (of one region) or of regions is
the mean one-way delay between their nodes in ms, rounded half up, at least 1 (the
plugin's same-zone cost, so crossing a zone never looks cheaper than staying). On the
presets: ``lan`` 0.1 ms -> 1, ``edge`` 1.5 ms -> 2, ``wan`` 10 ms -> 10. Zone costs are
written only for zones of the same region: the plugin reads a zone cost only when both
nodes share a region, and a region cost otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from schedulers.network import NodeNetwork

__all__ = [
    "MAX_COST",
    "REGION_LABEL",
    "SAME_HOST_COST",
    "SAME_ZONE_COST",
    "ZONE_LABEL",
    "NetworkCosts",
    "cost_of_delay",
    "network_costs",
]

REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"
# NetworkOverhead's constants (networkoverhead.go: SameHostname, SameZone, MaxCost).
SAME_HOST_COST = 0
SAME_ZONE_COST = 1
MAX_COST = 100


def cost_of_delay(delay_ms: float) -> int:
    """A one-way delay as a NetworkTopology cost: ms rounded half up, at least 1."""
    return max(SAME_ZONE_COST, int(delay_ms + 0.5))


@dataclass(frozen=True)
class NetworkCosts:
    """``region`` and ``zone``: (origin, destination) -> cost, as the CR lists them."""

    region: Mapping[tuple[str, str], int]
    zone: Mapping[tuple[str, str], int]
    source: str = ""

    def lookup(self, origin_region: str, origin_zone: str,
               key: tuple[str, str]) -> int | None:
        """The plugin's ``costMap`` lookup for a node in (origin_region, origin_zone):
        its map holds the region costs of its region and the zone costs of its zone
        (each only when that label is set), merged under one (origin, destination) key."""
        origin, _ = key
        if origin_zone and origin == origin_zone and key in self.zone:
            return self.zone[key]
        if origin_region and origin == origin_region and key in self.region:
            return self.region[key]
        return None


def network_costs(nodes: Iterable[tuple[str, Mapping[str, str]]],
                  network: NodeNetwork | None) -> NetworkCosts:
    """Costs for the zones and regions the ``nodes`` (name, labels) are in, from the
    mean delay between their nodes (a flat network when ``network`` is None)."""
    place: dict[str, tuple[str, str]] = {
        name: (labels.get(REGION_LABEL, ""), labels.get(ZONE_LABEL, "")) for name, labels in nodes}
    delay = network.delay_ms if network is not None else (lambda a, b: 0.0)
    region_sum: dict[tuple[str, str], list[float]] = {}
    zone_sum: dict[tuple[str, str], list[float]] = {}
    for a, (ra, za) in place.items():
        for b, (rb, zb) in place.items():
            if a == b:
                continue
            if ra != rb:
                if ra and rb:
                    region_sum.setdefault((ra, rb), []).append(delay(a, b))
            elif za != zb and za and zb:
                zone_sum.setdefault((za, zb), []).append(delay(a, b))
    return NetworkCosts(
        {k: cost_of_delay(sum(v) / len(v)) for k, v in sorted(region_sum.items())},
        {k: cost_of_delay(sum(v) / len(v)) for k, v in sorted(zone_sum.items())},
        network.source if network is not None else "flat")
