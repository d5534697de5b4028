"""random: a uniformly random feasible node for each pod (same filters as kube_default)."""

from __future__ import annotations

from schedulers.framework import DEFAULT_QUEUE_JITTER, ProfilePolicy
from schedulers.policies import kube_default
from schedulers.spec import PolicySpec

__all__ = ["NAME", "SPEC", "new"]

NAME = "random"
SPEC = PolicySpec(NAME, "a uniformly random feasible node (kube_default's filters)")


def new(*, seed: int | None = None, queue_jitter: float = DEFAULT_QUEUE_JITTER) -> ProfilePolicy:
    # No scorers: every feasible node ties and the profile draws uniformly among them.
    return ProfilePolicy(NAME, kube_default.default_filters(), [], seed=seed,
                         queue_jitter=queue_jitter, percentage_of_nodes_to_score=100,
                         tie_break="random")
