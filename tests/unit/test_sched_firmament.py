"""firmament: the flow solve equals brute force; rounds, capacity, rescheduling."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from schedulers import Node, Pod, TrafficMatrix, get_policy, inter_node_traffic, uniform_nodes
from schedulers.flownet import FlowProblem, solve
from schedulers.policies.firmament import FirmamentPolicy, round_targets

GI = 2**30


def _brute_force(p: FlowProblem) -> int:
    """Try every way to send each unit of supply to a node or to 'unscheduled'."""
    units = [e for e, s in enumerate(p.supply) for _ in range(int(s))]
    n_nodes = p.arc_cost.shape[1]
    best = None
    for choice in itertools.product(range(n_nodes + 1), repeat=len(units)):
        per_arc: dict[tuple[int, int], int] = {}
        per_node = [0] * n_nodes
        cost = 0
        ok = True
        for e, c in zip(units, choice, strict=True):
            if c == n_nodes:
                cost += int(p.unscheduled_cost[e])
                continue
            per_arc[(e, c)] = per_arc.get((e, c), 0) + 1
            per_node[c] += 1
            if per_arc[(e, c)] > p.arc_cap[e, c]:
                ok = False
                break
            cost += int(p.arc_cost[e, c])
        if not ok:
            continue
        for n, k in enumerate(per_node):
            if k > int(p.slot_cap[n].sum()):
                ok = False
                break
            for c, width in zip(p.slot_cost[n], p.slot_cap[n], strict=True):  # cheapest first
                take = min(k, int(width))
                cost += take * int(c)
                k -= take
        if ok and (best is None or cost < best):
            best = cost
    assert best is not None
    return best


@pytest.mark.parametrize("seed", range(12))
def test_single_flow_solve_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    e, n, s = int(rng.integers(1, 4)), int(rng.integers(1, 4)), 4
    supply = rng.integers(1, 3, e)
    while supply.sum() > 5:
        supply[np.argmax(supply)] -= 1
    slot_cap = rng.integers(0, 3, (n, s))  # slots of width 0, 1 or 2
    slot_cost = np.sort(rng.integers(0, 50, (n, s)), axis=1)  # convex: non-decreasing
    problem = FlowProblem(
        supply=supply.astype(np.int64),
        arc_cost=rng.integers(0, 100, (e, n)).astype(np.int64),
        arc_cap=(rng.integers(0, 3, (e, n)) * (rng.random((e, n)) > 0.2)).astype(np.int64),
        slot_cost=slot_cost.astype(np.int64),
        slot_cap=slot_cap.astype(np.int64),
        unscheduled_cost=np.full(e, 500, np.int64),
    )
    sol = solve(problem)
    assert sol.cost == _brute_force(problem)
    assert (sol.placed.sum(1) + sol.unscheduled == supply).all()


def test_single_batch_policy_is_optimal_for_its_cost_model() -> None:
    # With running pods fixed, one batch must realise the brute-force optimal cost.
    traffic = TrafficMatrix({("a", "b"): 100.0, ("c", "d"): 80.0, ("a", "c"): 5.0})
    nodes = uniform_nodes(3, cpu_m=1000, memory=GI)
    running = [(Pod("b-0", "b", cpu_m=300), "node-1"), (Pod("d-0", "d", cpu_m=300), "node-2")]
    pods = [Pod("a-0", "a", cpu_m=300), Pod("c-0", "c", cpu_m=300)]
    r = FirmamentPolicy(traffic, rounds=1).schedule(pods, nodes, running=running)
    assert r.assignments == {"a-0": "node-1", "c-0": "node-2"}


def test_rounds_commit_geometrically() -> None:
    assert round_targets(19, 6) == [1, 2, 4, 7, 11, 19]
    assert round_targets(3, 6) == [1, 2, 3, 3, 3, 3]
    assert round_targets(1, 1) == [1]
    assert round_targets(10000, 6)[-1] == 10000


def test_rounds_let_batch_pods_find_each_other() -> None:
    # a talks to b, c to d; in one blind batch they would just spread.
    traffic = TrafficMatrix({("a", "b"): 100.0, ("c", "d"): 100.0})
    pods = [Pod(n, n[0], cpu_m=100) for n in ("a-0", "b-0", "c-0", "d-0")]
    r = FirmamentPolicy(traffic, rounds=4).schedule(pods, uniform_nodes(4))
    crossing, _ = inter_node_traffic(r.assignments, traffic)
    assert crossing == 0
    assert len(set(r.assignments.values())) == 2  # the load term keeps the pairs apart


def test_capacity_is_respected_and_overflow_reported() -> None:
    nodes = [Node("a", 1000, GI), Node("b", 500, GI)]
    pods = [Pod(f"w-{i}", "w", cpu_m=400) for i in range(5)]
    r = FirmamentPolicy(TrafficMatrix()).schedule(pods, nodes)
    placed = list(r.assignments.values())
    assert placed.count("a") == 2 and placed.count("b") == 1
    assert len(r.unschedulable) == 2


def test_smaller_pods_fill_what_the_largest_cannot() -> None:
    nodes = [Node("a", 1000, GI)]
    pods = [Pod("big-0", "big", cpu_m=700), Pod("s-0", "s", cpu_m=200),
            Pod("s-1", "s", cpu_m=200)]
    r = FirmamentPolicy(TrafficMatrix()).schedule(pods, nodes)
    assert len(r.assignments) == 2 and len(r.unschedulable) == 1


def test_reschedule_migrates_a_pod_to_its_partner() -> None:
    traffic = TrafficMatrix({("a", "b"): 1000.0})
    nodes = uniform_nodes(2)
    running = [(Pod("a-0", "a", cpu_m=100), "node-1"), (Pod("b-0", "b", cpu_m=100), "node-2")]
    stay = FirmamentPolicy(traffic).schedule([], nodes, running=running)
    assert stay.migrations == []
    moved = FirmamentPolicy(traffic, reschedule=True, load_weight=0.1).schedule(
        [], nodes, running=running)
    assert len(moved.migrations) == 1
    # A big migration cost keeps everything where it is.
    kept = FirmamentPolicy(traffic, reschedule=True, migration_weight=5).schedule(
        [], nodes, running=running)
    assert kept.migrations == []


def test_registry_builds_firmament_with_options() -> None:
    p = get_policy("firmament", traffic=TrafficMatrix(), rounds=2, load_weight=1.0)
    assert isinstance(p, FirmamentPolicy) and p.rounds == 2
    with pytest.raises(ValueError, match="at least one round"):
        get_policy("firmament", rounds=0)


def test_large_batch_places_everything() -> None:
    rng = random.Random(0)
    ws = [f"w{i}" for i in range(30)]
    traffic = TrafficMatrix({(rng.choice(ws), rng.choice(ws)): rng.random() * 100
                             for _ in range(60)})
    pods = [Pod(f"{w}-{r}", w, cpu_m=100, memory=2**26) for w in ws for r in range(20)]
    r = FirmamentPolicy(traffic).schedule(pods, uniform_nodes(20))
    assert not r.unschedulable and len(r.assignments) == 600
