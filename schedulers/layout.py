"""Canonical layouts (identical nodes are interchangeable) and predicted inter-node traffic."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from schedulers.model import Node, workload_of_pod_name
from schedulers.traffic import TrafficMatrix

__all__ = ["canonical_layout", "inter_node_traffic"]

WorkloadOf = Callable[[str], str]


def canonical_layout(assignments: Mapping[str, str], nodes: Sequence[Node],
                     workload_of: WorkloadOf = workload_of_pod_name) -> str:
    """A string equal for two placements iff they differ only by swapping identical nodes.

    Each node becomes the sorted multiset of its workloads; nodes are grouped
    by everything but their name (capacity, labels, taints), and within a group
    the multisets are sorted. E.g. ``"[beer,grain,water][bread,flour][]"``.
    """
    known = {n.name for n in nodes}
    per_node: dict[str, list[str]] = {n.name: [] for n in nodes}
    for pod, node in assignments.items():
        if node not in known:
            raise ValueError(f"pod {pod} is assigned to unknown node {node!r}")
        per_node[node].append(workload_of(pod))
    groups: dict[tuple[object, ...], list[str]] = {}
    for n in nodes:
        groups.setdefault(n.signature(), []).append(
            "[" + ",".join(sorted(per_node[n.name])) + "]")
    parts = ["".join(sorted(members)) for members in groups.values()]
    if len(parts) == 1:
        return parts[0]
    order = sorted(range(len(parts)), key=lambda i: repr(list(groups)[i]))
    return " | ".join(f"g{k}:{parts[i]}" for k, i in enumerate(order))


def inter_node_traffic(assignments: Mapping[str, str], traffic: TrafficMatrix,
                       workload_of: WorkloadOf = workload_of_pod_name) -> tuple[float, float]:
    """(bytes/s that cross nodes, bytes/s in total) predicted for a placement.

    A call from w to v picks one of v's pods uniformly (Kubernetes Services do),
    and w's calls come evenly from its pods, so the pair's traffic stays local
    with probability ``sum_n (pods_w(n)/pods_w) * (pods_v(n)/pods_v)``.
    """
    counts: dict[str, dict[str, int]] = {}
    for pod, node in assignments.items():
        row = counts.setdefault(workload_of(pod), {})
        row[node] = row.get(node, 0) + 1
    totals = {w: sum(row.values()) for w, row in counts.items()}
    crossing = total = 0.0
    seen: set[tuple[str, str]] = set()
    for w in counts:
        for v, f in traffic.neighbours(w).items():
            if v not in counts or (v, w) in seen:
                continue
            seen.add((w, v))
            local = sum(c * counts[v].get(n, 0) for n, c in counts[w].items())
            stay = local / (totals[w] * totals[v])
            total += f
            crossing += f * (1.0 - stay)
    return crossing, total
