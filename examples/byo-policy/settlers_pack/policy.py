"""pack: bin-packing - each pod goes to the feasible node that is already fullest.

kube-scheduler's NodeResourcesFit plugin with the MostAllocated strategy, alone:
the default filters, then one score, ``requested * 100 / allocatable`` per
resource (with the pod; pods without requests count as 100m / 200Mi, as the
default scorer charges them), averaged over CPU and memory. Ties (empty nodes)
are broken like kube-scheduler's. A cluster of idle nodes fills one node before
the next: fewer nodes, so less traffic between them, by accident rather than by
design.

What the testbed needs from a policy module: ``NAME``, ``new(*, seed=None, ...)``
returning a ``schedulers.framework.Policy``, and optionally ``SPEC``.
"""

from __future__ import annotations

from schedulers.framework import ProfilePolicy
from schedulers.model import Pod
from schedulers.policies import kube_default
from schedulers.spec import PolicySpec
from schedulers.state import ClusterState, NodeInfo, nonzero_requests

__all__ = ["NAME", "SPEC", "MostAllocated", "new"]

NAME = "pack"
# No traffic (new() takes none) and no Kubernetes counterpart: a Python model, measured
# on the local backend.
SPEC = PolicySpec(NAME, "bin-packing: the fullest feasible node first (MostAllocated)")

_MAX_NODE_SCORE = 100


def most_requested_score(requested: int, capacity: int) -> int:
    """Upstream's mostRequestedScore: a node past its capacity counts as full."""
    if capacity == 0:
        return 0
    return min(requested, capacity) * _MAX_NODE_SCORE // capacity


class MostAllocated:
    """A score plugin: the fuller the node would be with the pod, the higher."""

    name = "MostAllocated"

    def score(self, pod: Pod, feasible: list[NodeInfo], state: ClusterState) -> list[int]:
        cpu, mem = nonzero_requests(pod)
        out = []
        for ni in feasible:
            parts = [most_requested_score(used + req, cap)
                     for used, req, cap in ((ni.nonzero_cpu, cpu, ni.node.cpu_m),
                                            (ni.nonzero_memory, mem, ni.node.memory))
                     if cap]
            out.append(sum(parts) // len(parts) if parts else 0)
        return out


def new(*, seed: int | None = None) -> ProfilePolicy:
    return ProfilePolicy(NAME, kube_default.default_filters(), [(MostAllocated(), 1)],
                         seed=seed)
