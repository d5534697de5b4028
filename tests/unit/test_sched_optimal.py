"""optimal: equals brute force on tiny cases; reports status and gap."""

from __future__ import annotations

import itertools
import random

import pytest

from schedulers import Node, Pod, TrafficMatrix, get_policy, inter_node_traffic
from schedulers.state import ClusterState

GI = 2**30


def _brute_force(pods: list[Pod], nodes: list[Node], traffic: TrafficMatrix) -> float:
    best = float("inf")
    for choice in itertools.product(range(len(nodes)), repeat=len(pods)):
        state = ClusterState(nodes)
        ok = True
        for pod, n in zip(pods, choice, strict=True):
            if not state.infos[n].fits(pod):
                ok = False
                break
            state.bind(pod, nodes[n].name)
        if ok:
            assignments = {p.name: nodes[n].name for p, n in zip(pods, choice, strict=True)}
            best = min(best, inter_node_traffic(assignments, traffic)[0])
    return best


@pytest.mark.parametrize("seed", range(8))
def test_optimal_equals_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    ws = ["a", "b", "c", "d"]
    traffic = TrafficMatrix({(x, y): float(rng.randint(1, 100))
                             for x in ws for y in ws if x != y and rng.random() < 0.6})
    # Some workloads get two replicas (the product formulation), some one.
    pods = [Pod(f"{w}-{i}", w, cpu_m=rng.choice([100, 300, 500]))
            for w in ws for i in range(rng.choice([1, 1, 2]))][:6]
    nodes = [Node(f"n{i}", rng.choice([600, 1000]), GI) for i in range(3)]
    result = get_policy("optimal", traffic=traffic).schedule(pods, nodes)
    if result.unschedulable:
        assert _brute_force(pods, nodes, traffic) == float("inf")
        return
    assert result.info["status"] == "OPTIMAL" and result.info["gap"] == 0
    found = inter_node_traffic(result.assignments, traffic)[0]
    assert found == pytest.approx(_brute_force(pods, nodes, traffic), rel=1e-4, abs=1e-6)


def test_everything_on_one_node_when_it_fits() -> None:
    traffic = TrafficMatrix({("a", "b"): 5.0, ("b", "c"): 5.0})
    pods = [Pod(f"{w}-0", w, cpu_m=100) for w in "abc"]
    nodes = [Node(f"n{i}", 1000, GI) for i in range(4)]
    r = get_policy("optimal", traffic=traffic).schedule(pods, nodes)
    assert len(set(r.assignments.values())) == 1


def test_capacity_forces_a_cut_at_the_lightest_edge() -> None:
    traffic = TrafficMatrix({("a", "b"): 100.0, ("b", "c"): 1.0, ("c", "d"): 100.0})
    pods = [Pod(f"{w}-0", w, cpu_m=500) for w in "abcd"]
    nodes = [Node("n1", 1000, GI), Node("n2", 1000, GI)]
    r = get_policy("optimal", traffic=traffic).schedule(pods, nodes)
    assert r.assignments["a-0"] == r.assignments["b-0"] != r.assignments["c-0"]
    assert r.assignments["c-0"] == r.assignments["d-0"]
    assert inter_node_traffic(r.assignments, traffic)[0] == pytest.approx(1.0)


def test_running_pods_are_respected() -> None:
    traffic = TrafficMatrix({("a", "b"): 10.0})
    nodes = [Node("n1", 1000, GI), Node("n2", 1000, GI)]
    r = get_policy("optimal", traffic=traffic).schedule(
        [Pod("a-0", "a", cpu_m=100)], nodes, running=[(Pod("b-0", "b", cpu_m=100), "n2")])
    assert r.assignments == {"a-0": "n2"}


def test_impossible_capacity_reports_unschedulable() -> None:
    r = get_policy("optimal", traffic=TrafficMatrix()).schedule(
        [Pod("a-0", "a", cpu_m=800), Pod("b-0", "b", cpu_m=800)], [Node("n", 1000, GI)])
    assert len(r.assignments) == 1 and len(r.unschedulable) == 1


def test_with_replicas_never_worse_than_firmament() -> None:
    rng = random.Random(3)
    ws = [f"w{i}" for i in range(8)]
    traffic = TrafficMatrix({(rng.choice(ws), rng.choice(ws)): float(rng.randint(1, 100))
                             for _ in range(14)})
    pods = [Pod(f"{w}-{i}", w, cpu_m=100) for w in ws for i in range(3)]
    nodes = [Node(f"n{i}", 600, GI) for i in range(5)]
    best = get_policy("optimal", traffic=traffic, time_limit_s=1.0).schedule(pods, nodes)
    heuristic = get_policy("firmament", traffic=traffic).schedule(pods, nodes)
    assert not best.unschedulable
    assert (inter_node_traffic(best.assignments, traffic)[0]
            <= inter_node_traffic(heuristic.assignments, traffic)[0] + 1e-6)
    assert 0.0 <= best.info["gap"] <= 1.0
