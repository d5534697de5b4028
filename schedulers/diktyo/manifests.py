"""What the real Diktyo scheduler needs on a control plane: its profile, the two CRDs, an
AppGroup and a NetworkTopology with their status written, and the pods' labels.

The objects are the same AppGroup and costs the model uses (`appgroup`, `costs`), as
the v1alpha1 JSON of diktyo-io/appgroup-api and networktopology-api. Their controllers
(diktyo-io/appgroup-controller, networktopology-controller) are not run: the harness
writes ``status`` itself (``status.topologyOrder``, which TopologicalSort reads, sorted
by selector because the plugin binary-searches it).

The objects live in one fixed namespace (``OBJECT_NAMESPACE``) named in both plugins'
``namespaces`` argument; the pods may be in any namespace (NetworkOverhead lists the
AppGroup's pods by label across all of them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from schedulers.diktyo.appgroup import AppGroup, Dependency, appgroup_from_economy
from schedulers.diktyo.costs import REGION_LABEL, ZONE_LABEL, NetworkCosts, network_costs
from schedulers.diktyo.plugins import NETWORK_OVERHEAD, TOPOLOGICAL_SORT
from schedulers.spec import PluginSetup

if TYPE_CHECKING:
    from schedulers.network import NodeNetwork
    from schedulers.traffic import TrafficMatrix
    from settlers.economy import Economy

__all__ = [
    "APPGROUP_LABEL",
    "CRD_FILES",
    "NETWORK_TOPOLOGY_NAME",
    "OBJECT_NAMESPACE",
    "WEIGHTS_NAME",
    "WORKLOAD_LABEL",
    "appgroup_object",
    "network_topology_object",
    "pod_labels",
    "profile",
    "setup",
]

# appgroup-api v1alpha1: AppGroupLabel (the group name) and AppGroupSelectorLabel.
APPGROUP_LABEL = "appgroup.diktyo.x-k8s.io"
WORKLOAD_LABEL = APPGROUP_LABEL + ".workload"
AG_API = "appgroup.diktyo.x-k8s.io/v1alpha1"
NT_API = "networktopology.diktyo.x-k8s.io/v1alpha1"
OBJECT_NAMESPACE = "default"
NETWORK_TOPOLOGY_NAME = "settlers-network"
WEIGHTS_NAME = "UserDefined"  # the plugin's default weightsName (not NetperfCosts)
# The snapshot's CRDs, installed by tools/k8s/build under crds/ in its cache.
CRD_FILES = ("appgroup.diktyo.x-k8s.io_appgroups.yaml",
             "networktopology.diktyo.x-k8s.io_networktopologies.yaml")


def _workload_ref(name: str) -> dict[str, str]:
    return {"kind": "Deployment", "apiVersion": "apps/v1", "name": name, "selector": name}


def _dependency(d: Dependency) -> dict[str, Any]:
    out: dict[str, Any] = {"workload": _workload_ref(d.workload),
                           "maxNetworkCost": d.max_network_cost}
    if d.min_bandwidth is not None:
        out["minBandwidth"] = str(int(d.min_bandwidth + 0.5))  # bytes/s as a Quantity
    return out


def object_name(name: str) -> str:
    """A DNS subdomain from an economy's name (lowercase, [-.a-z0-9])."""
    clean = re.sub(r"[^a-z0-9.-]+", "-", name.lower()).strip("-.")
    return clean[:63] or "settlers"


def appgroup_object(group: AppGroup, namespace: str = OBJECT_NAMESPACE) -> dict[str, Any]:
    """The AppGroup custom object, spec and status (what its controller would write)."""
    order = sorted(group.order.items())  # by selector: FindPodOrder binary-searches it
    return {
        "apiVersion": AG_API,
        "kind": "AppGroup",
        "metadata": {"name": object_name(group.name), "namespace": namespace},
        "spec": {
            "numMembers": len(group.workloads),
            "topologySortingAlgorithm": group.algorithm,
            "workloads": [
                {"workload": _workload_ref(w),
                 **({"dependencies": [_dependency(d) for d in group.dependencies_of(w)]}
                    if group.dependencies_of(w) else {})}
                for w in group.workloads],
        },
        "status": {"topologyOrder": [{"workload": _workload_ref(w), "index": i}
                                     for w, i in order]},
    }


def _origin_list(costs: Mapping[tuple[str, str], int]) -> list[dict[str, Any]]:
    origins: dict[str, list[dict[str, Any]]] = {}
    for (a, b), c in sorted(costs.items()):
        origins.setdefault(a, []).append({"destination": b, "networkCost": c})
    return [{"origin": o, "costList": cl} for o, cl in origins.items()]


def network_topology_object(costs: NetworkCosts, node_count: int,
                            namespace: str = OBJECT_NAMESPACE) -> dict[str, Any]:
    """The NetworkTopology custom object: one ``UserDefined`` weight with the region and
    zone costs (sorted by key and origin, as the plugin's binary searches expect)."""
    topology = []
    if costs.region:
        topology.append({"topologyKey": REGION_LABEL, "originList": _origin_list(costs.region)})
    if costs.zone:
        topology.append({"topologyKey": ZONE_LABEL, "originList": _origin_list(costs.zone)})
    return {
        "apiVersion": NT_API,
        "kind": "NetworkTopology",
        "metadata": {"name": NETWORK_TOPOLOGY_NAME, "namespace": namespace},
        "spec": {"configmapName": NETWORK_TOPOLOGY_NAME,
                 "weights": [{"name": WEIGHTS_NAME, "topologyList": topology}]},
        "status": {"nodeCount": node_count},
    }


def pod_labels(group: AppGroup) -> dict[str, dict[str, str]]:
    """workload -> the labels that tie its pods to the AppGroup."""
    return {w: {APPGROUP_LABEL: object_name(group.name), WORKLOAD_LABEL: w}
            for w in group.workloads}


def profile(weight: int, namespace: str = OBJECT_NAMESPACE) -> tuple[dict[str, Any],
                                                                    tuple[dict[str, Any], ...]]:
    """(plugins, pluginConfig) of the one profile: TopologicalSort as the only queue sort,
    NetworkOverhead at every extension point it has (PreFilter, Filter, Score) with
    ``weight``, kube-scheduler's default plugins otherwise."""
    plugins = {
        "multiPoint": {"enabled": [{"name": NETWORK_OVERHEAD, "weight": weight}]},
        "queueSort": {"enabled": [{"name": TOPOLOGICAL_SORT}], "disabled": [{"name": "*"}]},
    }
    config = (
        {"name": TOPOLOGICAL_SORT, "args": {"namespaces": [namespace]}},
        {"name": NETWORK_OVERHEAD, "args": {"namespaces": [namespace],
                                            "weightsName": WEIGHTS_NAME,
                                            "networkTopologyName": NETWORK_TOPOLOGY_NAME}},
    )
    return plugins, config


def setup(*, economy: Economy, nodes: Iterable[tuple[str, Mapping[str, str]]],
          network: NodeNetwork | None = None, traffic: TrafficMatrix | None = None,
          options: Mapping[str, Any] | None = None) -> PluginSetup:
    """Everything the real scheduler needs, from the same inputs and options the model
    takes (``max_network_cost``, ``weight``, ``sorting``; the model-only
    ``queue_jitter`` and ``weights`` are not used)."""
    from schedulers.policies import diktyo as policy

    opts = dict(options or {})
    group = appgroup_from_economy(
        economy, max_network_cost=int(opts.get("max_network_cost",
                                               policy.DEFAULT_MAX_NETWORK_COST)),
        traffic=traffic or None, algorithm=opts.get("sorting", "ReverseKahn"))
    node_list: Sequence[tuple[str, Mapping[str, str]]] = list(nodes)
    plugins, config = profile(int(opts.get("weight", policy.DEFAULT_WEIGHT)))
    return PluginSetup(
        plugins=plugins, plugin_config=config, crds=CRD_FILES,
        objects=(appgroup_object(group),
                 network_topology_object(network_costs(node_list, network), len(node_list))),
        pod_labels=pod_labels(group))
