"""netmarks: kube_default plus the NetMARKS traffic score, weighted like an extender.

kube-scheduler adds an extender's priority as ``score * weight * 10``. With
the default weight 1 the best node gets +100 points: more than what the
resource plugins move between nodes for a testbed-sized app (each co-located
100m/64Mi pod costs a 4-CPU/8-GiB node ~2-3 points), so traffic decides unless
a node is clearly fuller. No traffic data means no vote: then it is kube_default.
"""

from __future__ import annotations

from collections.abc import Mapping

from schedulers.framework import DEFAULT_QUEUE_JITTER, ProfilePolicy
from schedulers.plugins import netmarks as netmarks_plugin
from schedulers.policies import kube_default
from schedulers.spec import KubernetesCounterpart, PolicySpec
from schedulers.traffic import TrafficMatrix

__all__ = ["DEFAULT_WEIGHT", "NAME", "SPEC", "new"]

NAME = "netmarks"
SPEC = PolicySpec(
    NAME, "kube_default plus the NetMARKS traffic score, weighted like an extender",
    uses_traffic=True,
    # On a real control plane: a second kube-scheduler (profile netmarks-scheduler)
    # whose extender is our webhook, `schedulers netmarks-extender`. --bind and
    # --await-binds: the extender scores against every pod kube-scheduler placed before,
    # as this model does (without them it missed a just-placed partner in half of the
    # scoring calls on kwok: bench/fidelity_extender_probe.py, docs/kubernetes.md).
    kubernetes=KubernetesCounterpart(
        "netmarks-scheduler", "extender", "NetMARKS extender",
        host_command=("netmarks-extender", "--bind", "--await-binds", "0.5"),
        chart_key="netmarks"),
    # Dynamic scenarios: a descheduler evicts pods whose traffic mostly crosses nodes
    # and this policy places them again.
    rebalancer="netmarks",
)
DEFAULT_WEIGHT = 1


def new(*, traffic: TrafficMatrix | None = None, seed: int | None = None,
        weight: int = DEFAULT_WEIGHT, weights: Mapping[str, int] | None = None,
        queue_jitter: float = DEFAULT_QUEUE_JITTER) -> ProfilePolicy:
    if weight < 1:
        raise ValueError(f"netmarks weight must be >= 1 (kube-scheduler rejects a "
                         f"prioritize extender with weight {weight})")
    score = netmarks_plugin.new(traffic if traffic is not None else TrafficMatrix())
    return kube_default.new(seed=seed, weights=weights, extra_scorers=[(score, weight)],
                            queue_jitter=queue_jitter, name=NAME)
