"""Node objects for kwok: fake nodes with a chosen capacity and labels.

kwokctl starts the kwok controller with ``--manage-all-nodes``, so any Node we create
is taken over by kwok: it gets heartbeats, turns Ready, and every pod bound to it is
marked Running. We create the Node (status included, as kwokctl's own template does)
through the API instead of `kwokctl scale node`, because that template cannot set labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NodeSpec", "node_manifest", "node_names"]


@dataclass(frozen=True)
class NodeSpec:
    """Capacity and labels shared by the nodes of a kwok cluster.

    ``zones`` (optional) are assigned round-robin as ``topology.kubernetes.io/zone``.
    ``per_node`` (optional) gives named nodes their own extra labels and ``node_cpu``
    their own CPU (a topology's nodes: ``results.topology``).
    """

    cpu: str = "4"
    memory: str = "8Gi"
    pods: int = 110
    labels: Mapping[str, str] = field(default_factory=dict)
    zones: Sequence[str] = ()
    per_node: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    node_cpu: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pods < 1:
            raise ValueError(f"pods per node must be >= 1, got {self.pods}")
        for key in [*self.labels, *(k for ls in self.per_node.values() for k in ls)]:
            if not key or key.count("/") > 1:
                raise ValueError(f"invalid node label key {key!r}: expected [prefix/]name")


def node_names(count: int) -> list[str]:
    """``node-1 .. node-N``, the names the emulated cluster uses too."""
    if count < 1:
        raise ValueError(f"a cluster needs at least one node, got {count}")
    return [f"node-{i}" for i in range(1, count + 1)]


def node_manifest(name: str, index: int, spec: NodeSpec) -> dict[str, Any]:
    """A v1 Node for kwok with capacity == allocatable, no taints, and our labels."""
    labels = {
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
        "kubernetes.io/hostname": name,
        "type": "kwok",
        **spec.labels,
        **spec.per_node.get(name, {}),
    }
    if spec.zones:
        labels["topology.kubernetes.io/zone"] = spec.zones[index % len(spec.zones)]
    resources = {"cpu": spec.node_cpu.get(name, spec.cpu), "memory": spec.memory,
                 "pods": str(spec.pods)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            # kwok manages every node anyway; the annotation documents that it is fake.
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {},
        "status": {
            "allocatable": dict(resources),
            "capacity": dict(resources),
            # Documentation-range addresses (RFC 5737): nothing ever connects to them.
            "addresses": [{"type": "InternalIP", "address": f"192.0.2.{index + 1}"}],
        },
    }
