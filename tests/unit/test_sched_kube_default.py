"""kube_default as a whole: filters, weights, tie-breaking, queue order."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from schedulers import Node, Pod, Taint, get_policy, queue_order, uniform_nodes
from schedulers.framework import num_feasible_nodes_to_find
from schedulers.policies.kube_default import DEFAULT_WEIGHTS
from schedulers.tiebreak import FilterRace

GI = 2**30


def test_default_weights_match_upstream() -> None:
    assert DEFAULT_WEIGHTS == {
        "TaintToleration": 3, "NodeAffinity": 2, "NodeResourcesFit": 1,
        "PodTopologySpread": 2, "InterPodAffinity": 2,
        "NodeResourcesBalancedAllocation": 1, "ImageLocality": 1,
    }


def test_spreads_equal_pods_over_equal_nodes() -> None:
    pods = [Pod(f"p-{i}", f"w{i}", cpu_m=100, memory=64 * 2**20) for i in range(10)]
    result = get_policy("kube_default", seed=3).schedule(pods, uniform_nodes(5))
    assert Counter(result.assignments.values()) == Counter(
        {f"node-{i}": 2 for i in range(1, 6)})


def test_ties_follow_the_heap_without_an_extender() -> None:
    # kube-scheduler without extenders: the first node in the feasible list wins a
    # full tie, unless the Filter race moved it to the end (FilterRace).
    def first(policy_seed: int, **opts: object) -> str:
        pods = [Pod("a-0", "a", cpu_m=100)]
        return get_policy("kube_default", seed=policy_seed, **opts).schedule(
            pods, uniform_nodes(3)).assignments["a-0"]

    assert {first(s, filter_race=FilterRace(0.0)) for s in range(50)} == {"node-1"}
    raced = Counter(first(s, filter_race=FilterRace(0.6)) for s in range(600))
    assert 380 < raced["node-1"] < 540  # 1 - 0.6/3 = 80 %
    # Moving node-1 to the end leaves node-2 first; node-3 never leads a full tie.
    assert set(raced) == {"node-1", "node-2"}


def test_ties_are_broken_uniformly_with_an_extender() -> None:
    # netmarks stands for kube-scheduler + an extender: ties are random there.
    firsts = Counter(
        get_policy("netmarks", seed=s).schedule([Pod("a-0", "a", cpu_m=100)],
                                                uniform_nodes(3)).assignments["a-0"]
        for s in range(600))
    assert set(firsts) == {"node-1", "node-2", "node-3"}
    assert min(firsts.values()) > 150  # ~200 each


def test_single_feasible_node_is_taken_unscored() -> None:
    nodes = [Node("big", 4000, 8 * GI), Node("tainted", 4000, 8 * GI,
                                             taints=[Taint("x", "y", "NoSchedule")])]
    result = get_policy("kube_default", seed=1).schedule([Pod("a-0", "a")], nodes)
    assert result.assignments == {"a-0": "big"}


def test_unschedulable_is_reported() -> None:
    nodes = [Node("n", 1000, GI)]
    pods = [Pod("a-0", "a", cpu_m=600), Pod("b-0", "b", cpu_m=600)]
    result = get_policy("kube_default", seed=1, queue_jitter=0).schedule(pods, nodes)
    assert result.assignments == {"a-0": "n"}
    assert result.unschedulable == ["b-0"]


def test_prefer_no_schedule_taint_outweighs_resources() -> None:
    # TaintToleration weight 3 x 100 beats a fuller node's resource scores.
    nodes = [Node("soft", 4000, 8 * GI, taints=[Taint("x", "", "PreferNoSchedule")]),
             Node("full", 4000, 8 * GI)]
    running = [(Pod("r-0", "r", cpu_m=2000, memory=4 * GI), "full")]
    result = get_policy("kube_default", seed=1).schedule([Pod("a-0", "a", cpu_m=100)], nodes,
                                                         running=running)
    assert result.assignments == {"a-0": "full"}


def test_queue_order_models_creation_with_jitter() -> None:
    pods = [Pod(f"w{i}-{r}", f"w{i}") for i in range(30) for r in range(2)]
    exact = queue_order(pods, random.Random(1), jitter=0)
    assert exact == pods
    jittered = queue_order(pods, random.Random(1), jitter=1.0)
    assert jittered != pods and sorted(p.name for p in jittered) == sorted(p.name for p in pods)
    # Replicas of one Deployment stay together and in order.
    pos = {p.name: i for i, p in enumerate(jittered)}
    assert all(pos[f"w{i}-1"] == pos[f"w{i}-0"] + 1 for i in range(30))
    # Priority beats arrival time.
    urgent = Pod("late-0", "late", priority=10)
    assert queue_order([*pods, urgent], random.Random(1))[0] is urgent


def test_percentage_of_nodes_to_score() -> None:
    assert num_feasible_nodes_to_find(50) == 50
    assert num_feasible_nodes_to_find(1000) == 420  # (50 - 1000/125)% = 42%
    assert num_feasible_nodes_to_find(5000) == 500  # floor of 10% ... at least 5%
    assert num_feasible_nodes_to_find(150) == 100


def test_bad_weights_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown score plugin"):
        get_policy("kube_default", weights={"Nope": 1})
