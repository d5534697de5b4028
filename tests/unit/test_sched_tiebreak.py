"""Tie-breaking as kube-scheduler v1.36 does it: Go's heap without extenders,
uniform with one; and the Filter step's feasible-node order."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from schedulers.tiebreak import FilterRace, heap_top, pick


def test_heap_top_is_the_best_score() -> None:
    assert heap_top([10, 30, 20]) == 1
    assert heap_top([7]) == 0
    with pytest.raises(ValueError, match="no nodes"):
        heap_top([])


def test_heap_top_among_ties_follows_the_sift_down_not_the_list_order() -> None:
    # All equal: nothing moves, the first node wins.
    assert heap_top([5, 5, 5, 5, 5]) == 0
    # [5, 7, 7]: the root swaps with its left child.
    assert heap_top([5, 7, 7]) == 1
    # [5, 3, 7, 7]: heap.Init first lifts index 3 over index 1, then the root takes
    # it: the last of the two tied nodes wins, not the first.
    assert heap_top([5, 3, 7, 7]) == 3


def test_equal_pods_cycle_through_five_nodes_in_kube_schedulers_order() -> None:
    # The order the real kube-scheduler v1.36.3 visits 5 identical kwok nodes with
    # identical pods (bench/fidelity.py): node-1, node-2, node-4, node-5, node-3.
    counts = [0] * 5
    visited = []
    for _ in range(10):
        k = heap_top([-c for c in counts])
        visited.append(k + 1)
        counts[k] += 1
    assert visited == [1, 2, 4, 5, 3, 1, 2, 4, 5, 3]


def test_random_tie_break_is_uniform_among_the_best() -> None:
    rng = random.Random(4)
    picks = Counter(pick([9, 9, 3, 9], "random", rng) for _ in range(900))
    assert set(picks) == {0, 1, 3}
    assert min(picks.values()) > 240  # ~300 each
    assert pick([1, 9, 3], "random", rng) == 1


def test_filter_race_moves_at_most_one_node_to_the_end() -> None:
    rng = random.Random(2)
    items = list("abcde")
    assert FilterRace(0.0).order(items, rng) == items
    moved = Counter()
    for _ in range(500):
        out = FilterRace(1.0).order(items, rng)
        assert sorted(out) == items
        assert [x for x in items if x != out[-1]] == out[:-1]  # the rest keep their order
        moved[out[-1]] += 1
    assert set(moved) == set(items)
    with pytest.raises(ValueError, match="probability"):
        FilterRace(1.5)
