"""How kube-scheduler picks one node among equally scored ones.

kube-scheduler (v1.36, ``pkg/scheduler/schedule_one.go``) puts the scored nodes
in a ``container/heap`` ordered by ``TotalScore`` and then by a ``Randomizer``
field, and takes the top. Only the extender code path sets ``Randomizer`` (to
``rand.Int()``, for every node an extender scored). So:

- with a prioritize extender (NetMARKS), ties are broken uniformly at random;
- without one (the default profile), every ``Randomizer`` is 0 and the winner
  among tied nodes is whichever ``heap.Init`` leaves at the top. That depends
  on the order of the feasible-node list, which is the snapshot's node order
  as permuted by the parallel Filter step: feasible nodes are appended as the
  Filter goroutines finish (``findNodesThatPassFilters``).

With identical pods on identical nodes this is far from uniform: the heap
keeps visiting the nodes in one fixed order (node-1, node-2, node-4, node-5,
node-3 for five nodes), so pods k and k+5 share a node much more often than a
uniform draw would make them. `FilterRace` models the permutation, with a rate
measured on the real kube-scheduler (``bench/fidelity.py --probe``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

__all__ = ["DEFAULT_STRAGGLE", "FilterRace", "TieBreak", "heap_top", "pick"]

T = TypeVar("T")

# "heap": kube-scheduler without extenders; "random": with a prioritize extender
# (and our random bound).
TieBreak = Literal["heap", "random"]

# P(one Filter goroutine finishes last), measured on the real kube-scheduler
# v1.36.3 with 5 kwok nodes at --v=10, which logs every node's score in
# feasible-list order (bench/fidelity.py --probe; see BENCHMARKS.md): 68 % of
# cycles listed the nodes in snapshot order, 29 % had exactly one node moved to
# the end, 4 % something else.
DEFAULT_STRAGGLE = 0.37


def heap_top(totals: Sequence[int]) -> int:
    """Index of the element Go's ``heap.Init`` + ``heap.Pop`` returns first.

    ``Less(i, j)`` is ``totals[i] > totals[j]`` (every Randomizer equal), so
    among equal totals the sift-down's comparisons, not chance, decide.
    """
    h = list(range(len(totals)))
    n = len(h)
    if n == 0:
        raise ValueError("no nodes to choose from")

    def less(a: int, b: int) -> bool:
        return totals[h[a]] > totals[h[b]]

    for start in range(n // 2 - 1, -1, -1):  # heap.Init: down(i) from n/2-1 to 0
        i = start
        while True:
            left = 2 * i + 1
            if left >= n:
                break
            j = left
            if left + 1 < n and less(left + 1, left):
                j = left + 1
            if not less(j, i):
                break
            h[i], h[j] = h[j], h[i]
            i = j
    return h[0]


@dataclass(frozen=True)
class FilterRace:
    """The order in which kube-scheduler's parallel Filter step lists feasible nodes.

    The Filter goroutines take the nodes in snapshot order and append each node
    that passes as they finish; usually that keeps snapshot order, but now and
    then one goroutine is descheduled and its node comes last. With probability
    `straggle` a uniformly chosen node is moved to the end of the list.
    """

    straggle: float = DEFAULT_STRAGGLE

    def __post_init__(self) -> None:
        if not 0.0 <= self.straggle <= 1.0:
            raise ValueError(f"straggle must be a probability in [0, 1], got {self.straggle}")

    def order(self, items: Sequence[T], rng: random.Random) -> list[T]:
        out = list(items)
        if len(out) > 1 and rng.random() < self.straggle:
            out.append(out.pop(rng.randrange(len(out))))
        return out


def pick(totals: Sequence[int], how: TieBreak, rng: random.Random) -> int:
    """Index of the chosen node: the top score, ties broken as kube-scheduler would."""
    if how == "heap":
        return heap_top(totals)
    best = max(totals)
    top = [i for i, t in enumerate(totals) if t == best]
    return top[0] if len(top) == 1 else rng.choice(top)
