"""Rebalancers: each moves the obviously misplaced pod, leaves a good layout alone, and
never breaks capacity, a cordon or its move budget."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from schedulers import (
    Node,
    Pod,
    PolicySpec,
    TrafficMatrix,
    UnknownPolicyError,
    policy_spec,
    uniform_nodes,
)
from schedulers.network import Link, NodeNetwork
from schedulers.rebalancers import (
    Move,
    Rebalancer,
    rebalancer_for,
    rebalancer_names,
    rebalancer_options,
)
from schedulers.rebalancers.netmarks import cross_traffic

ALL = ["netmarks", "firmament", "trade"]
CPU = 100
# a - b - c: a simple chain, as flour - board - boat.
CHAIN = TrafficMatrix({("a", "b"): 1000.0, ("b", "c"): 1000.0})


def pod(workload: str, i: int = 0) -> Pod:
    return Pod(f"{workload}-{i}", workload, cpu_m=CPU, memory=64 * 2**20)


def layout(spec: dict[str, str]) -> list[tuple[Pod, str]]:
    """{"a": "node-1", ...} -> running pods a-0 on node-1, ..."""
    return [(pod(w), node) for w, node in spec.items()]


def plan(policy: str, running: Sequence[tuple[Pod, str]], nodes: Sequence[Node],
         traffic: TrafficMatrix = CHAIN, **options: Any) -> list[Move]:
    rebalancer = rebalancer_for(policy, **options)
    assert rebalancer is not None
    return rebalancer.plan(running, nodes, traffic)


def applied(running: Sequence[tuple[Pod, str]], moves: Sequence[Move]) -> dict[str, str]:
    where = {p.name: node for p, node in running}
    for m in moves:
        assert where[m.pod] == m.src, m  # every move starts where the pod is by then
        where[m.pod] = m.dst
    return where


def test_every_traffic_policy_names_its_rebalancer_and_the_baselines_none() -> None:
    assert rebalancer_names() == ALL
    assert {name: policy_spec(name).rebalancer for name in
            ["kube_default", "netmarks", "firmament", "random", "optimal", "trade", "diktyo"]
            } == {"kube_default": None, "netmarks": "netmarks", "firmament": "firmament",
                  "random": None, "optimal": None, "trade": "trade", "diktyo": None}
    for name in ["kube_default", "random", "optimal", "diktyo"]:
        assert rebalancer_for(name) is None
    strategies = {}
    for name in ALL:
        r = rebalancer_for(name)
        assert isinstance(r, Rebalancer) and r.name == name
        assert r.window_s == 20 and r.max_moves == rebalancer_options(name)["max_moves"]
        strategies[name] = r.strategy
    assert strategies == {"netmarks": "evict", "firmament": "evict",
                          "trade": "make-before-break"}


@pytest.mark.parametrize("policy", ALL)
def test_moves_the_one_misplaced_pod_of_a_chain(policy: str) -> None:
    running = layout({"a": "node-1", "b": "node-2", "c": "node-1"})
    moves = plan(policy, running, uniform_nodes(3))
    assert [(m.pod, m.src, m.dst) for m in moves] == [("b-0", "node-2", "node-1")]
    assert moves[0].reason


@pytest.mark.parametrize("policy", ALL)
@pytest.mark.parametrize("good", [
    {"a": "node-1", "b": "node-1", "c": "node-1"},                  # all together
    {"a": "node-2", "b": "node-2", "c": "node-2", "x": "node-1", "y": "node-1"},  # two groups
])
def test_leaves_a_good_layout_alone(policy: str, good: dict[str, str]) -> None:
    traffic = TrafficMatrix({("a", "b"): 1000.0, ("b", "c"): 1000.0, ("x", "y"): 500.0})
    assert plan(policy, layout(good), uniform_nodes(3), traffic) == []


@pytest.mark.parametrize("policy", ALL)
def test_no_traffic_no_moves(policy: str) -> None:
    scattered = layout({"a": "node-1", "b": "node-2", "c": "node-3"})
    assert plan(policy, scattered, uniform_nodes(3), TrafficMatrix()) == []
    # Traffic between workloads that do not run moves nothing either.
    other = TrafficMatrix({("p", "q"): 1000.0})
    assert plan(policy, scattered, uniform_nodes(3), other) == []


@pytest.mark.parametrize("policy", ALL)
def test_a_cordoned_node_is_never_a_destination(policy: str) -> None:
    # b's partners both sit on node-1: the best place for b, were it not cordoned.
    nodes = uniform_nodes(3)
    nodes[0].unschedulable = True
    running = layout({"a": "node-1", "b": "node-2", "c": "node-1"})
    moves = plan(policy, running, nodes, max_moves=3)
    assert moves, "pulling a and c to b is worth it"
    assert all(m.dst != "node-1" for m in moves), moves
    assert "b-0" not in {m.pod for m in moves}
    # Without the cordon every rebalancer takes b to node-1.
    nodes[0].unschedulable = False
    assert [m.dst for m in plan(policy, running, nodes)] == ["node-1"]


@pytest.mark.parametrize("policy", ALL)
def test_capacity_is_respected(policy: str) -> None:
    # Two pods fill a node: node-1 (a, c) has no room for b.
    nodes = [Node(f"node-{i}", cpu_m=2 * CPU, memory=2**30) for i in (1, 2, 3)]
    running = layout({"a": "node-1", "b": "node-2", "c": "node-1"})
    moves = plan(policy, running, nodes, max_moves=3)
    assert moves, "a or c can join b on node-2"
    assert "b-0" not in {m.pod for m in moves}
    where = {p.name: node for p, node in running}
    for m in moves:  # after each move, in order: every node within its CPU
        where[m.pod] = m.dst
        assert max(Counter(where.values()).values()) * CPU <= 2 * CPU, (m, where)


def _pairs(n: int) -> tuple[list[tuple[Pod, str]], TrafficMatrix]:
    """n talking pairs p_i - q_i, each split over node-1 and node-2 (rates decreasing)."""
    running = [(pod(f"p{i}"), "node-1") for i in range(n)]
    running += [(pod(f"q{i}"), "node-2") for i in range(n)]
    traffic = TrafficMatrix({(f"p{i}", f"q{i}"): 1000.0 - 50 * i for i in range(n)})
    return running, traffic


@pytest.mark.parametrize("policy", ALL)
def test_max_moves_is_honoured(policy: str) -> None:
    running, traffic = _pairs(6)
    nodes = uniform_nodes(2)
    for budget in (1, 3):
        moves = plan(policy, running, nodes, traffic, max_moves=budget)
        assert len(moves) == budget, moves
        assert len({m.pod for m in moves}) == budget
        # The busiest pair goes first.
        assert moves[0].pod in ("p0-0", "q0-0")
    default = rebalancer_options(policy)["max_moves"]
    assert len(plan(policy, running, nodes, traffic)) == default
    # Every move co-locates a pair: the moves never undo each other.
    where = applied(running, plan(policy, running, nodes, traffic, max_moves=6))
    assert all(where[f"p{i}-0"] == where[f"q{i}-0"] for i in range(6))


@pytest.mark.parametrize("policy", ALL)
def test_same_input_same_moves_in_any_order(policy: str) -> None:
    running, traffic = _pairs(4)
    running += layout({"a": "node-1", "b": "node-2", "c": "node-1"})
    nodes = uniform_nodes(3)
    traffic = TrafficMatrix({**{(f"p{i}", f"q{i}"): 700.0 for i in range(4)},
                             ("a", "b"): 1000.0, ("b", "c"): 1000.0})
    first = plan(policy, running, nodes, traffic, max_moves=3)
    assert len(first) == 3
    assert plan(policy, running, nodes, traffic, max_moves=3) == first
    assert plan(policy, list(reversed(running)), nodes, traffic, max_moves=3) == first


def test_trade_weighs_the_delay_between_nodes() -> None:
    # node-1 (a's) and node-3 (b's) are full; node-2 is next to node-1, far from node-3.
    nodes = [Node(name, cpu_m=cpu, memory=2**30)
             for name, cpu in (("node-1", CPU), ("node-2", 4 * CPU), ("node-3", CPU))]
    near, far = Link(0.1), Link(10.0)
    net = NodeNetwork.build(["node-1", "node-2", "node-3"],
                            lambda x, y: near if {x, y} == {"node-1", "node-2"} else far,
                            "test")
    running = layout({"a": "node-1", "b": "node-3"})
    traffic = TrafficMatrix({("a", "b"): 1000.0})
    trade = rebalancer_for("trade", network=net, max_moves=1)  # then a-0 would follow b-0
    assert trade is not None
    assert [(m.pod, m.dst) for m in trade.plan(running, nodes, traffic)] == [("b-0", "node-2")]
    # On a flat network node-2 is no nearer than node-3: nothing to gain.
    assert plan("trade", running, nodes, traffic) == []


def test_netmarks_threshold_decides_who_is_a_candidate() -> None:
    # b-0 talks to a-0 (its node, 400 B/s) and c-0 (node-2, 600 B/s): 60 % crosses;
    # c-0 is held on node-2 by d-0.
    running = layout({"a": "node-1", "b": "node-1", "c": "node-2", "d": "node-2"})
    traffic = TrafficMatrix({("a", "b"): 400.0, ("b", "c"): 600.0, ("c", "d"): 5000.0})
    shares = cross_traffic(running, traffic)
    assert shares["b-0"] == (600.0, 1000.0) and shares["a-0"] == (0.0, 400.0)
    moves = plan("netmarks", running, uniform_nodes(2), traffic)
    # Then a-0, judged on the layout as it is after b-0's move, crosses all and follows.
    assert [(m.pod, m.dst) for m in moves] == [("b-0", "node-2"), ("a-0", "node-2")]
    assert moves[0].reason == "60% of its 1,000 B/s crossed nodes, 40% after"
    assert plan("netmarks", running, uniform_nodes(2), traffic, threshold=0.7) == []


def test_netmarks_shares_traffic_over_replicas() -> None:
    # Two replicas of b: each carries half of a-b; b-1 alone on node-2 crosses it all.
    running = [(pod("a"), "node-1"), (pod("b", 0), "node-1"), (pod("b", 1), "node-2")]
    shares = cross_traffic(running, TrafficMatrix({("a", "b"): 1000.0}))
    assert shares == {"a-0": (500.0, 1000.0), "b-0": (0.0, 500.0), "b-1": (500.0, 500.0)}


def test_firmament_migration_weight_prices_a_move() -> None:
    running = layout({"a": "node-1", "b": "node-2", "c": "node-1"})
    assert plan("firmament", running, uniform_nodes(3), migration_weight=0.25)
    # A move costing more than the busiest pod's whole traffic never pays.
    assert plan("firmament", running, uniform_nodes(3), migration_weight=1.5) == []


@pytest.mark.parametrize(("policy", "options", "message"), [
    ("netmarks", {"threshold": 1.0},
     r"netmarks rebalancer: threshold must be a number in \[0.5, 1\), got 1.0"),
    ("netmarks", {"threshold": 0.3}, r"threshold must be a number in \[0.5, 1\), got 0.3.*"
     "cannot cross less elsewhere"),
    ("netmarks", {"threshold": "high"}, "threshold must be a number"),
    ("netmarks", {"max_moves": 0}, "max_moves must be an integer >= 1, got 0"),
    ("trade", {"max_moves": 2.5}, "max_moves must be an integer >= 1"),
    ("trade", {"max_moves": True}, "max_moves must be an integer >= 1"),
    ("firmament", {"window_s": 0}, r"window_s must be a number in \(0, inf\)"),
    ("firmament", {"window_s": float("nan")}, "window_s must be a number"),
    ("firmament", {"migration_weight": -1}, r"migration_weight must be a number in \[0, inf\)"),
    ("firmament", {"threshold": 0.5},
     "firmament rebalancer .* takes no option.* threshold; its options: max_moves, "
     "migration_weight, window_s"),
    ("trade", {"bogus": 1}, "trade rebalancer .* takes no option.* bogus"),
    ("kube_default", {"bogus": 1}, "unknown rebalancer option.* bogus"),
])
def test_bad_options_are_clear_errors(policy: str, options: dict[str, Any],
                                      message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rebalancer_for(policy, **options)


def test_inputs_and_shared_options_reach_every_policy() -> None:
    # The runner may hand every scheduler the same settings and inputs.
    net = NodeNetwork.flat(1.0)
    for name in ["kube_default", *ALL]:
        r = rebalancer_for(name, network=net, seed=3, max_moves=5, window_s=30)
        assert r is None or (r.max_moves == 5 and r.window_s == 30)
    with pytest.raises(UnknownPolicyError, match="unknown scheduler 'nope'"):
        rebalancer_for("nope")


@pytest.mark.parametrize("policy", ALL)
def test_a_pod_on_an_unknown_node_is_an_error(policy: str) -> None:
    with pytest.raises(ValueError, match="runs on node 'node-9', which is not among"):
        plan(policy, layout({"a": "node-9"}), uniform_nodes(2))
    with pytest.raises(ValueError, match="listed as running twice"):
        plan(policy, [(pod("a"), "node-1"), (pod("a"), "node-2")], uniform_nodes(2))


def test_policies_listing_shows_each_rebalancer() -> None:
    from schedulers.cli import app

    result = CliRunner().invoke(app, ["policies"])
    assert result.exit_code == 0, result.output
    blocks = {b.split()[0]: b for b in result.output.split("\n\n") if b.strip()}
    assert "    rebalancer:    netmarks (evict)\n" in blocks["netmarks"]
    assert "    rebalancer:    firmament (evict)\n" in blocks["firmament"]
    assert "    rebalancer:    trade (make-before-break)\n" in blocks["trade"]
    for name in ["kube_default", "random", "optimal", "diktyo"]:
        assert "    rebalancer:    none (never moves a running pod)\n" in blocks[name]


def test_a_spec_naming_an_unknown_rebalancer_is_refused() -> None:
    from schedulers.registry import _checked

    def new(*, seed: int | None = None) -> None: ...

    spec = PolicySpec("mine", "a policy", rebalancer="shuffle")
    source = SimpleNamespace(NAME="mine", SPEC=spec, new=new)
    with pytest.raises(RuntimeError, match="names rebalancer 'shuffle'; known: netmarks, "
                                           "firmament, trade"):
        _checked("mine", source, RuntimeError, "my.module")
    with pytest.raises(ValueError, match="rebalancer 'no good' is not a name"):
        PolicySpec("mine", "a policy", rebalancer="no good")
