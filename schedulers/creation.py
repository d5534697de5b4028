"""Creation order: the order in which one redeployment creates its Deployments.

kube-scheduler takes pods one at a time, roughly in the order they were created
(`schedulers.framework.queue_order`), and its default scores spread each pod away
from the pods already placed. So which Deployment comes right after which decides
which pairs tend to be split: in the economy file's order flour comes shortly after
grain, and kube_default puts flour's hop across nodes in nearly every redeployment.
The order is a factor of the experiment, not an accident of how the economy file is
written; this module names the choices and derives each redeployment's order:

- ``file``: the economy's order as loaded (``Economy.names``: the file's order, made
  topological - raw items first, every item after its inputs, the file's order among
  items of one depth), every redeployment; what every run did before ``--order``;
- ``reverse``: that order backwards (consumers first), every redeployment;
- ``random``: a new shuffle for every redeployment, drawn from ``(seed, deployment)``
  alone: reproducible, independent of how many redeployments ran before (a resumed
  or partial run draws the same orders) and the same for every scheduler of a run,
  so schedulers are compared on the same orders (a paired design).

The models and the kwok backend honour the order exactly as far as the control plane
does (the kwok backend creates the Deployments one after another in it); the
scheduler models add kube-scheduler's queue jitter on top (`queue_order`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from schedulers.model import Pod

__all__ = [
    "CREATION_ORDERS",
    "FILE_ORDER",
    "CreationOrder",
    "CreationOrderMode",
    "in_creation_order",
    "join_order",
]

CreationOrderMode = Literal["file", "reverse", "random"]
CREATION_ORDERS: tuple[CreationOrderMode, ...] = get_args(CreationOrderMode)


@dataclass(frozen=True)
class CreationOrder:
    """How each redeployment orders its Deployments: a mode and, for ``random``, a seed."""

    mode: CreationOrderMode = "file"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in CREATION_ORDERS:
            raise ValueError(f"unknown creation order {self.mode!r}; known: "
                             f"{', '.join(CREATION_ORDERS)}")

    def for_deployment(self, deployment: int, workloads: Sequence[str]) -> tuple[str, ...]:
        """The Deployments (``workloads``, in the economy's order) in the order
        redeployment number ``deployment`` creates them."""
        if self.mode == "file":
            return tuple(workloads)
        if self.mode == "reverse":
            return tuple(reversed(workloads))
        items = list(workloads)
        # A string seed is hashed with SHA-512 (not Python's salted hash): the same
        # order on every machine and in every process.
        random.Random(f"creation-order:{self.seed}:{deployment}").shuffle(items)
        return tuple(items)

    def describe(self) -> str:
        """The mode in words, for reports and command output."""
        return {
            "file": "the economy's order (inputs first, as in the file), every redeployment",
            "reverse": "the economy's order reversed (consumers first), every redeployment",
            "random": f"a new random order per redeployment (seed {self.seed}, the same "
                      "orders for every scheduler)",
        }[self.mode]


FILE_ORDER = CreationOrder("file")


def in_creation_order(pods: Sequence[Pod], order: Sequence[str]) -> list[Pod]:
    """``pods`` sorted by their Deployment's position in ``order``; replicas of one
    Deployment keep their relative order (a ReplicaSet creates them in one burst)."""
    position = {w: i for i, w in enumerate(order)}
    missing = sorted({p.workload for p in pods} - set(position))
    if missing:
        raise ValueError(f"creation order lacks Deployment(s) {', '.join(missing)}")
    return sorted(pods, key=lambda p: position[p.workload])


def join_order(order: Sequence[str]) -> str:
    """The order as one comma-joined string (the ``creation_order`` column)."""
    return ",".join(order)
