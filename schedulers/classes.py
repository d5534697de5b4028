"""Equivalence classes of pods and which nodes each class may use (batch policies).

Pods of one workload with the same requests and the same placement constraints
are interchangeable to a batch solver: it decides *how many* of them go where.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from schedulers.model import Pod
from schedulers.plugins import node_affinity, node_unschedulable, taint_toleration
from schedulers.state import ClusterState

__all__ = ["PodClass", "allowed_mask", "fit_counts", "pod_classes"]

_UNLIMITED = 1 << 40


@dataclass
class PodClass:
    key: tuple[object, ...]
    workload: str
    cpu_m: int
    memory: int
    pods: list[Pod] = field(default_factory=list)

    @property
    def constrained(self) -> bool:
        p = self.pods[0]
        return bool(p.tolerations or p.node_selector or p.required_node_terms)


def pod_classes(pods: Sequence[Pod]) -> list[PodClass]:
    """Group pods; classes and the pods in them keep first-seen order."""
    classes: dict[tuple[object, ...], PodClass] = {}
    for p in pods:
        key: tuple[object, ...]
        if p.tolerations or p.node_selector or p.required_node_terms:
            key = (p.workload, p.cpu_m, p.memory, tuple(p.tolerations),
                   tuple(sorted(p.node_selector.items())), tuple(p.required_node_terms))
        else:  # the common case, hashed cheaply (batches of 10^4 pods, every round)
            key = (p.workload, p.cpu_m, p.memory)
        cls = classes.get(key)
        if cls is None:
            cls = classes[key] = PodClass(key, p.workload, p.cpu_m, p.memory)
        cls.pods.append(p)
    return list(classes.values())


_STATIC_FILTERS = (node_unschedulable.new(), node_affinity.new(), taint_toleration.new())


def allowed_mask(classes: Sequence[PodClass], state: ClusterState) -> np.ndarray:
    """(E, N) bool: the node passes the non-resource filters for the class."""
    plain_nodes = np.array([not ni.node.taints and not ni.node.unschedulable
                            for ni in state.infos], dtype=bool)
    special = np.nonzero(~plain_nodes)[0].tolist()
    mask = np.zeros((len(classes), len(state.infos)), dtype=bool)
    for e, cls in enumerate(classes):
        rep = cls.pods[0]
        # An unconstrained pod passes every untainted, schedulable node: only the
        # other nodes need the filters.
        check = range(len(state.infos)) if cls.constrained else special
        if not cls.constrained:
            mask[e] = plain_nodes
        for n in check:
            ni = state.infos[n]
            mask[e, n] = all(f.filter(rep, ni, state) is None for f in _STATIC_FILTERS)
    return mask


def fit_counts(classes: Sequence[PodClass], state: ClusterState) -> np.ndarray:
    """(E, N): how many more pods of the class fit on each node by its free resources."""
    free_cpu = np.array([ni.free_cpu() for ni in state.infos], dtype=np.int64)
    free_mem = np.array([ni.free_memory() for ni in state.infos], dtype=np.int64)
    free_pods = np.array([ni.free_pods() for ni in state.infos], dtype=np.int64)
    out = np.empty((len(classes), len(state.infos)), dtype=np.int64)
    for e, cls in enumerate(classes):
        by_cpu = np.maximum(free_cpu, 0) // cls.cpu_m if cls.cpu_m else _UNLIMITED
        by_mem = np.maximum(free_mem, 0) // cls.memory if cls.memory else _UNLIMITED
        out[e] = np.minimum(np.minimum(by_cpu, by_mem), np.maximum(free_pods, 0))
    return out
