"""Placement policies for the Settlers testbed behind one interface.

    from schedulers import get_policy, pods_for_economy, uniform_nodes, TrafficMatrix
    policy = get_policy("netmarks", traffic=TrafficMatrix.from_file("t.csv"), seed=1)
    result = policy.schedule(pods_for_economy(economy), uniform_nodes(5))
    result.assignments   # {"flour-0": "node-3", ...}

Policies: kube_default (a model of kube-scheduler's default profile), netmarks
(kube_default + the NetMARKS traffic score; also a real extender, see
``schedulers netmarks-extender``), firmament (min-cost-flow batches), random,
optimal (CP-SAT bound), and any policy installed as a package under the
``settlers_testbed.policies`` entry point. ``policy_spec(name)`` says what each
is; ``schedulers policies`` prints the table.
"""

from __future__ import annotations

from schedulers.creation import CREATION_ORDERS, CreationOrder, in_creation_order
from schedulers.framework import Policy, ScheduleResult, queue_order
from schedulers.layout import canonical_layout, inter_node_traffic
from schedulers.model import (
    Node,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    Pod,
    PodAffinityTerm,
    PreferredNodeTerm,
    Taint,
    Toleration,
    pods_for_economy,
    uniform_nodes,
    workload_of_pod_name,
)
from schedulers.registry import (
    PluginError,
    UnknownPolicyError,
    available_policies,
    builtin_policies,
    get_policy,
    policy_spec,
    policy_specs,
    uses_traffic,
)
from schedulers.spec import KubernetesCounterpart, PolicySpec
from schedulers.state import ClusterState
from schedulers.traffic import TrafficError, TrafficMatrix, example_traffic_path

__all__ = [
    "CREATION_ORDERS",
    "ClusterState",
    "CreationOrder",
    "KubernetesCounterpart",
    "Node",
    "NodeSelectorRequirement",
    "NodeSelectorTerm",
    "PluginError",
    "Pod",
    "PodAffinityTerm",
    "Policy",
    "PolicySpec",
    "PreferredNodeTerm",
    "ScheduleResult",
    "Taint",
    "Toleration",
    "TrafficError",
    "TrafficMatrix",
    "UnknownPolicyError",
    "available_policies",
    "builtin_policies",
    "canonical_layout",
    "example_traffic_path",
    "get_policy",
    "in_creation_order",
    "inter_node_traffic",
    "pods_for_economy",
    "policy_spec",
    "policy_specs",
    "queue_order",
    "uniform_nodes",
    "uses_traffic",
    "workload_of_pod_name",
]
