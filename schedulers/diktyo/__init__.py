"""Diktyo (SIG Scheduling's network-aware plugins) for the testbed: the AppGroup from the
economy, the NetworkTopology from the cluster's topology, models of TopologicalSort and
NetworkOverhead, and the objects and profile the real plugins need on a control plane.

The policy itself is `schedulers.policies.diktyo`; docs/schedulers.md has the mapping.
"""

from __future__ import annotations

from schedulers.diktyo.appgroup import AppGroup, Dependency, appgroup_from_economy, kahn_order
from schedulers.diktyo.costs import NetworkCosts, cost_of_delay, network_costs
from schedulers.diktyo.plugins import NetworkOverhead, TopologicalSort

__all__ = [
    "AppGroup",
    "Dependency",
    "NetworkCosts",
    "NetworkOverhead",
    "TopologicalSort",
    "appgroup_from_economy",
    "cost_of_delay",
    "kahn_order",
    "network_costs",
]
