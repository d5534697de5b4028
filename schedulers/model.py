"""The scheduling model: nodes, pods, taints, affinities.

These mirror the parts of ``v1.Node`` and ``v1.Pod`` that kube-scheduler's
default plugins read, and nothing else. Quantities are plain integers: CPU in
millicores, memory in bytes. A request of 0 means "no request" (best effort),
exactly as an absent ``resources.requests`` entry does in Kubernetes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from settlers.economy import Economy

__all__ = [
    "HOSTNAME_LABEL",
    "ZONE_LABEL",
    "Node",
    "NodeSelectorRequirement",
    "NodeSelectorTerm",
    "Pod",
    "PodAffinityTerm",
    "PreferredNodeTerm",
    "Taint",
    "Toleration",
    "pods_for_economy",
    "uniform_nodes",
    "workload_of_pod_name",
]

HOSTNAME_LABEL = "kubernetes.io/hostname"
ZONE_LABEL = "topology.kubernetes.io/zone"

TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str = ""
    effect: TaintEffect = "NoSchedule"


@dataclass(frozen=True, slots=True)
class Toleration:
    """A pod toleration; an empty key with operator Exists tolerates everything."""

    key: str = ""
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str = ""
    effect: str = ""  # "" = every effect

    def tolerates(self, taint: Taint) -> bool:
        # Same rules as v1.Toleration.ToleratesTaint.
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        return self.value == taint.value


@dataclass(frozen=True, slots=True)
class NodeSelectorRequirement:
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        op = self.operator
        if op == "Exists":
            return self.key in labels
        if op == "DoesNotExist":
            return self.key not in labels
        if self.key not in labels:
            return False
        value = labels[self.key]
        if op == "In":
            return value in self.values
        if op == "NotIn":
            return value not in self.values
        try:  # Gt / Lt compare integers; a non-integer label never matches
            have, want = int(value), int(self.values[0])
        except (ValueError, IndexError):
            return False
        return have > want if op == "Gt" else have < want


@dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    """All requirements must match (AND); a term list matches if any term does (OR)."""

    match_expressions: tuple[NodeSelectorRequirement, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        # An empty term matches nothing, as in v1.NodeSelectorTerm.
        return bool(self.match_expressions) and all(
            r.matches(labels) for r in self.match_expressions
        )


@dataclass(frozen=True, slots=True)
class PreferredNodeTerm:
    weight: int
    term: NodeSelectorTerm


@dataclass(frozen=True, slots=True)
class PodAffinityTerm:
    """A *preferred* inter-pod (anti-)affinity term with a matchLabels selector."""

    match_labels: tuple[tuple[str, str], ...]
    topology_key: str = HOSTNAME_LABEL
    weight: int = 1
    anti: bool = False

    def selects(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels)


@dataclass(slots=True)
class Node:
    """A node's allocatable resources, labels, taints and cached images (name -> bytes)."""

    name: str
    cpu_m: int
    memory: int
    max_pods: int = 110
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[Taint] = field(default_factory=list)
    unschedulable: bool = False
    images: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.cpu_m < 0 or self.memory < 0 or self.max_pods < 0:
            raise ValueError(f"node {self.name}: capacities must be >= 0")
        # A copy: several nodes built from one labels dict must not share hostnames.
        self.labels = {HOSTNAME_LABEL: self.name, **self.labels}

    def signature(self) -> tuple[object, ...]:
        """Everything but the name: nodes with equal signatures are interchangeable."""
        labels = tuple(sorted((k, v) for k, v in self.labels.items() if k != HOSTNAME_LABEL))
        return (self.cpu_m, self.memory, self.max_pods, labels, tuple(self.taints),
                self.unschedulable, tuple(sorted(self.images.items())))


@dataclass(slots=True)
class Pod:
    """A pod to place. ``workload`` names its Deployment (and Service, and Istio workload).

    ``cpu_m``/``memory`` are the summed container requests (0 = not requested).
    ``required_node_terms`` are ORed (empty = no constraint); ``node_preferences``
    and ``pod_affinity`` are the preferred (soft) terms.
    """

    name: str
    workload: str
    cpu_m: int = 0
    memory: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    tolerations: list[Toleration] = field(default_factory=list)
    node_selector: dict[str, str] = field(default_factory=dict)
    required_node_terms: list[NodeSelectorTerm] = field(default_factory=list)
    node_preferences: list[PreferredNodeTerm] = field(default_factory=list)
    pod_affinity: list[PodAffinityTerm] = field(default_factory=list)
    image: str = ""
    priority: int = 0
    namespace: str = "default"

    def __post_init__(self) -> None:
        if self.cpu_m < 0 or self.memory < 0:
            raise ValueError(f"pod {self.name}: requests must be >= 0")

    def matches_node_selection(self, labels: dict[str, str]) -> bool:
        """nodeSelector AND (any required node-affinity term), as NodeAffinity's filter."""
        for k, v in self.node_selector.items():
            if labels.get(k) != v:
                return False
        return not self.required_node_terms or any(
            t.matches(labels) for t in self.required_node_terms)


def pods_for_economy(economy: Economy, *, image: str = "") -> list[Pod]:
    """One pod per replica of every item, in the economy's (creation) order.

    Names are ``<item>-<i>``; the workload and the ``app`` label are the item.
    """
    pods: list[Pod] = []
    for item in economy:
        for i in range(item.replicas):
            pods.append(Pod(
                name=f"{item.name}-{i}",
                workload=item.name,
                cpu_m=item.resources.cpu_m,
                memory=item.resources.memory,
                labels={"app": item.name},
                image=image,
            ))
    return pods


def uniform_nodes(n: int, cpu_m: int = 4000, memory: int = 8 * 2**30,
                  max_pods: int = 110) -> list[Node]:
    """``n`` identical nodes ``node-1`` .. ``node-n``."""
    if n < 1:
        raise ValueError(f"need at least one node, got {n}")
    return [Node(name=f"node-{i}", cpu_m=cpu_m, memory=memory, max_pods=max_pods)
            for i in range(1, n + 1)]


_INDEXED = re.compile(r"^(.*)-\d+$")


def workload_of_pod_name(name: str) -> str:
    """``flour-0`` -> ``flour``: our pod names are ``<workload>-<index>``."""
    m = _INDEXED.match(name)
    return m.group(1) if m else name
