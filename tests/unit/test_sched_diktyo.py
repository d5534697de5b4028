"""Diktyo's model against hand-worked cases of the upstream rules (scheduler-plugins
pkg/networkaware): the AppGroup's order, the NetworkTopology's costs, NetworkOverhead's
met/unmet counting, filter rule, accumulated cost and normalisation, TopologicalSort's
queue, and the objects the real scheduler is given."""

from __future__ import annotations

import math

import pytest

from schedulers import get_policy
from schedulers.diktyo import (
    NetworkCosts,
    NetworkOverhead,
    TopologicalSort,
    appgroup_from_economy,
    cost_of_delay,
    kahn_order,
    network_costs,
)
from schedulers.diktyo.appgroup import AppGroup, Dependency
from schedulers.diktyo.manifests import (
    APPGROUP_LABEL,
    WORKLOAD_LABEL,
    appgroup_object,
    network_topology_object,
    setup,
)
from schedulers.diktyo.plugins import normalize, pair_cost
from schedulers.model import Node, Pod
from schedulers.network import Link, NodeNetwork
from schedulers.spec import KubernetesCounterpart
from schedulers.state import ClusterState
from settlers.economy import Economy

R, Z = "topology.kubernetes.io/region", "topology.kubernetes.io/zone"


def node(name: str, region: str = "", zone: str = "") -> Node:
    labels = {k: v for k, v in ((R, region), (Z, zone)) if v}
    return Node(name, cpu_m=4000, memory=8 * 2**30, labels=labels)


# The networkoverhead README's example: regions us-west-1 (zones z1, z2) and us-east-1
# (z3, z4); region cost 20, z1<->z2 5, z3<->z4 10; P1 depends on P2 (maxNetworkCost 15).
README_NODES = [node("n1", "us-west-1", "z1"), node("n2", "us-west-1", "z1"),
                node("n3", "us-west-1", "z2"), node("n5", "us-east-1", "z3"),
                node("n7", "us-east-1", "z4")]
README_COSTS = NetworkCosts(
    region={("us-west-1", "us-east-1"): 20, ("us-east-1", "us-west-1"): 20},
    zone={("z1", "z2"): 5, ("z2", "z1"): 5, ("z3", "z4"): 10, ("z4", "z3"): 10})


def group(deps: dict[str, list[tuple[str, int]]], order: list[str]) -> AppGroup:
    workloads = tuple(order)
    return AppGroup("a1", workloads,
                    {w: tuple(Dependency(d, c) for d, c in ds) for w, ds in deps.items()},
                    "ReverseKahn", {w: i + 1 for i, w in enumerate(order)})


def overhead(g: AppGroup, nodes: list[Node], placed: list[tuple[Pod, str]]
             ) -> tuple[NetworkOverhead, ClusterState]:
    plugin = NetworkOverhead(g)
    plugin._costs = README_COSTS
    state = ClusterState(nodes)
    state.bind_all(placed)
    return plugin, state


def test_kahn_order_starts_from_what_nothing_depends_on() -> None:
    # a -> b, a -> c, b -> d, c -> d (consumer -> dependency), as the README's frontend.
    deps = {"a": ["b", "c"], "b": ["d"], "c": ["d"]}
    assert kahn_order(["d", "c", "b", "a"], deps) == ["a", "c", "b", "d"]  # ties: list order
    assert kahn_order(["a", "b", "c", "d"], deps) == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="cycle"):
        kahn_order(["a", "b"], {"a": ["b"], "b": ["a"]})


def test_the_appgroup_is_the_economy() -> None:
    econ = Economy.from_mapping({"name": "e", "items": {
        "grain": {}, "water": {}, "flour": {"inputs": {"grain": 1}},
        "bread": {"inputs": {"flour": 1, "water": 1}}}})
    g = appgroup_from_economy(econ, max_network_cost=7)
    assert g.dependencies_of("bread") == (Dependency("flour", 7), Dependency("water", 7))
    assert g.dependencies_of("grain") == ()
    # Kahn (consumers first; ties in the economy's order): bread, water, flour, grain;
    # ReverseKahn (the default) is that backwards: inputs first.
    kahn = appgroup_from_economy(econ, max_network_cost=7, algorithm="KahnSort")
    assert sorted(kahn.order, key=kahn.order.__getitem__) == ["bread", "water", "flour", "grain"]
    assert sorted(g.order, key=g.order.__getitem__) == ["grain", "flour", "water", "bread"]
    assert g.index("nope") == -1


def test_readme_example_filter_and_cost() -> None:
    g = group({"P1": [("P2", 15)]}, ["P2", "P1"])
    plugin, state = overhead(g, README_NODES, [(Pod("P2-0", "P2"), "n1")])
    p1 = Pod("P1-0", "P1")
    got = {ni.name: plugin.counts(p1, ni, state) for ni in state.infos}
    assert got == {
        "n1": (1, 0, 0),    # same node
        "n2": (1, 0, 1),    # same zone
        "n3": (1, 0, 5),    # z2 -> z1 costs 5 <= 15
        "n5": (0, 1, 20),   # us-east-1 -> us-west-1 costs 20 > 15
        "n7": (0, 1, 20),
    }
    assert [plugin.filter(p1, ni, state) is None for ni in state.infos] == \
        [True, True, True, False, False]
    # Scores over the feasible nodes: costs 0, 1, 5 -> 100, 80, 0.
    assert plugin.score(p1, state.infos[:3], state) == [100, 80, 0]


def test_unmet_must_exceed_met_to_filter_and_each_placed_pod_counts() -> None:
    g = group({"P1": [("P2", 15), ("P3", 15)]}, ["P2", "P3", "P1"])
    placed = [(Pod("P2-0", "P2"), "n1"), (Pod("P3-0", "P3"), "n5"), (Pod("P3-1", "P3"), "n5")]
    plugin, state = overhead(g, README_NODES, placed)
    p1 = Pod("P1-0", "P1")
    by = state.by_name
    assert plugin.counts(p1, by["n1"], state) == (1, 2, 40)   # 1 met, 2 unmet -> out
    assert plugin.filter(p1, by["n1"], state) is not None
    assert plugin.counts(p1, by["n5"], state) == (2, 1, 20)   # 2 met, 1 unmet -> in
    assert plugin.filter(p1, by["n5"], state) is None
    assert plugin.counts(p1, by["n7"], state) == (2, 1, 40)   # z4 -> z3: 10 <= 15, twice


def test_unlabelled_and_unknown_pairs() -> None:
    bare, zb = node("b1"), node("x", "r9", "z9")
    costs = NetworkCosts({}, {})
    state = ClusterState([bare, node("b2"), zb])
    b1, b2, x = state.infos
    assert pair_cost(b2, b1, costs, 5) == (100, False)   # the dependency's node: no labels
    assert pair_cost(b1, b1, costs, 5) == (0, True)
    # Labelled pair without a cost in the NetworkTopology: cost 100, neither met nor unmet.
    assert pair_cost(b1, x, costs, 5) == (100, None)


def test_normalize_is_upstreams() -> None:
    assert normalize([0, 1, 5, 10]) == [100, 90, 50, 0]
    assert normalize([0, 1, 3]) == [100, 67, 0]   # int() truncates 33.3
    assert normalize([3, 3]) == [100, 100]
    assert normalize([0, 0]) == [0, 0]


def test_no_placed_dependency_scores_equally_and_filters_nothing() -> None:
    g = group({"P1": [("P2", 0)]}, ["P2", "P1"])
    plugin, state = overhead(g, README_NODES, [(Pod("other-0", "P1"), "n5")])
    p1 = Pod("P1-1", "P1")
    assert plugin.score(p1, state.infos, state) == [0] * len(README_NODES)
    assert all(plugin.filter(p1, ni, state) is None for ni in state.infos)
    outsider = Pod("x-0", "unknown")
    assert plugin.score(outsider, state.infos, state) == [0] * len(README_NODES)


def test_costs_come_from_the_delays() -> None:
    assert [cost_of_delay(d) for d in (0.0, 0.1, 1.5, 2.4, 10.0)] == [1, 1, 2, 2, 10]
    nodes = [("a", {R: "r1", Z: "za"}), ("b", {R: "r1", Z: "zb"}), ("c", {R: "r2", Z: "zc"})]
    links = {("a", "b"): Link(1.5), ("b", "a"): Link(1.5)}
    far = {(x, "c"): Link(10.0) for x in "ab"} | {("c", x): Link(10.0) for x in "ab"}
    costs = network_costs(nodes, NodeNetwork({**links, **far}, None, "test"))
    assert costs.zone == {("za", "zb"): 2, ("zb", "za"): 2}
    assert costs.region == {("r1", "r2"): 10, ("r2", "r1"): 10}
    assert network_costs([("u1", {}), ("u2", {})], None) == NetworkCosts({}, {}, "flat")


def test_topological_sort_sorts_only_who_waits_together() -> None:
    g = group({}, ["in", "out"])
    arrivals = [(0.0, Pod("out-0", "out")), (0.02, Pod("in-0", "in")),
                (1.0, Pod("out-1", "out")), (2.0, Pod("in-1", "in"))]
    names = lambda pods: [p.name for p in pods]  # noqa: E731
    assert names(TopologicalSort(g, 0.0).order(arrivals)) == ["out-0", "in-0", "out-1", "in-1"]
    # A 0.05 cycle: out-0 is alone at 0 and goes first; in-0 comes after it either way.
    assert names(TopologicalSort(g, 0.05).order(arrivals)) == ["out-0", "in-0", "out-1", "in-1"]
    # Two pods waiting together leave by index, the rest as they come.
    late = [(0.0, Pod("x-0", "out")), (0.0, Pod("y-0", "in")), (0.5, Pod("z-0", "in"))]
    assert names(TopologicalSort(g, 0.1).order(late)) == ["y-0", "x-0", "z-0"]
    # The whole batch waits: index order, arrival order within a workload.
    assert names(TopologicalSort(g, math.inf).order(arrivals)) == \
        ["in-0", "in-1", "out-0", "out-1"]
    with pytest.raises(ValueError):
        TopologicalSort(g, -1.0)


def test_a_dependency_decided_within_the_bind_lag_is_not_seen() -> None:
    g = group({"web": [("db", 0)]}, ["db", "web"])
    queue = TopologicalSort(g, 0.01)
    # db decided at 0, web-0 at 0.01 (inside a 0.25 lag), web-1 arrives at 1.0.
    arrivals = [(0.0, Pod("db-0", "db")), (0.0, Pod("web-0", "web")),
                (1.0, Pod("web-1", "web"))]
    assert [p.name for p in queue.order(arrivals)] == ["db-0", "web-0", "web-1"]
    assert queue.decided == {"db-0": 0.0, "web-0": 0.01, "web-1": 1.0}
    plugin = NetworkOverhead(g, clock=queue, bind_lag=0.25)
    plugin._costs = README_COSTS
    state = ClusterState(README_NODES)
    state.bind(Pod("db-0", "db"), "n1")
    far = state.by_name["n5"]
    # web-0: db is still binding, so nothing is placed as far as the plugin knows.
    assert plugin.counts(Pod("web-0", "web"), far, state) == (0, 0, 0)
    assert plugin.filter(Pod("web-0", "web"), far, state) is None
    # web-1, a second later: db counts (unmet in the other region, cost 20).
    assert plugin.counts(Pod("web-1", "web"), far, state) == (0, 1, 20)
    # A pod that ran before the batch (not decided by this queue) always counts.
    state.bind(Pod("old-0", "db"), "n2")
    assert plugin.counts(Pod("web-0", "web"), far, state) == (0, 1, 20)


def test_the_policy_keeps_a_consumer_in_its_dependencys_zone() -> None:
    econ = Economy.from_mapping({"name": "pair", "items": {"db": {}, "web": {"inputs": {"db": 1}}}})
    nodes = [node("n1", "r", "za"), node("n2", "r", "za"), node("n3", "r", "zb"),
             node("n4", "r", "zb")]
    far = NodeNetwork.build([n.name for n in nodes], lambda a, b: Link(
        0.1 if nodes[int(a[1]) - 1].labels[Z] == nodes[int(b[1]) - 1].labels[Z] else 10.0), "t")
    web = [Pod(f"web-{i}", "web", cpu_m=100) for i in range(6)]
    for seed in range(5):
        placed = get_policy("diktyo", network=far, economy=econ, seed=seed).schedule(
            web, nodes, running=[(Pod("db-0", "db"), "n3")])
        assert set(placed.assignments.values()) <= {"n3", "n4"}
    # Without an economy there is no AppGroup: nothing is filtered.
    free = get_policy("diktyo", network=far, seed=0).schedule(
        web, nodes, running=[(Pod("db-0", "db"), "n3")])
    assert set(free.assignments.values()) & {"n1", "n2"}


def test_policy_options_are_checked() -> None:
    with pytest.raises(ValueError, match="weight"):
        get_policy("diktyo", weight=0)
    with pytest.raises(ValueError, match="max_network_cost"):
        get_policy("diktyo", max_network_cost=-1)
    with pytest.raises(ValueError, match="sorting"):
        get_policy("diktyo", sorting="Tarjan")
    with pytest.raises(ValueError, match="bind_lag"):
        get_policy("diktyo", bind_lag=-1.0)


def test_objects_for_the_real_scheduler() -> None:
    econ = Economy.from_mapping({"name": "My Econ", "items": {
        "b": {}, "a": {"inputs": {"b": 1}}}})
    made = setup(economy=econ, nodes=[("n1", {R: "r", Z: "z1"}), ("n2", {R: "r", Z: "z2"})],
                 network=NodeNetwork.flat(1.5), options={"max_network_cost": 3, "weight": 2})
    ag, nt = made.objects
    assert ag["metadata"]["name"] == "my-econ"
    assert ag["spec"]["workloads"][1]["dependencies"] == [
        {"workload": {"kind": "Deployment", "apiVersion": "apps/v1", "name": "b",
                      "selector": "b"}, "maxNetworkCost": 3}]
    # Sorted by selector (the plugin binary-searches it); ReverseKahn: b (input) first.
    assert [(t["workload"]["selector"], t["index"]) for t in ag["status"]["topologyOrder"]] \
        == [("a", 2), ("b", 1)]
    assert nt["spec"]["weights"][0]["topologyList"] == [{
        "topologyKey": Z, "originList": [
            {"origin": "z1", "costList": [{"destination": "z2", "networkCost": 2}]},
            {"origin": "z2", "costList": [{"destination": "z1", "networkCost": 2}]}]}]
    assert made.pod_labels["a"] == {APPGROUP_LABEL: "my-econ", WORKLOAD_LABEL: "a"}
    assert made.plugins["multiPoint"]["enabled"] == [{"name": "NetworkOverhead", "weight": 2}]
    assert made.plugins["queueSort"]["enabled"] == [{"name": "TopologicalSort"}]
    empty = network_topology_object(NetworkCosts({}, {}), 3)
    assert empty["spec"]["weights"][0]["topologyList"] == []
    assert appgroup_object(appgroup_from_economy(econ, max_network_cost=1))["spec"][
        "numMembers"] == 2


def test_plugins_counterparts_are_checked() -> None:
    with pytest.raises(ValueError, match="needs binary"):
        KubernetesCounterpart("x", "plugins", "x")
    with pytest.raises(ValueError, match="module:function"):
        KubernetesCounterpart("x", "plugins", "x", binary="b", setup="nope")
    with pytest.raises(ValueError, match="for kind"):
        KubernetesCounterpart("x", "custom", "x", binary="b")
    ok = KubernetesCounterpart("x", "plugins", "x", binary="b", setup="m.n:f")
    assert not ok.external


def test_diktyo_options_reach_the_real_plugins_on_kwok_only() -> None:
    from results.config import ConfigError, build_config

    cfg = build_config(overrides={"schedulers": ["diktyo"], "backend": "kwok",
                                  "scheduler_options": {"diktyo": {"max_network_cost": 3}}})
    assert cfg.scheduler_options == {"diktyo": {"max_network_cost": 3}}
    with pytest.raises(ConfigError, match="kwok and kubernetes backends"):
        build_config(overrides={"schedulers": ["diktyo"], "backend": "kubernetes",
                                "scheduler_options": {"diktyo": {"weight": 2}}})


def test_a_pod_the_scheduler_refused_is_named_with_its_reason() -> None:
    from types import SimpleNamespace

    from harness.backends.k8s.workloads import unbound_message

    cond = SimpleNamespace(type="PodScheduled", status="False", reason="Unschedulable",
                           message="0/5 nodes are available: 5 Node(s) does not meet ...")
    pods = [SimpleNamespace(metadata=SimpleNamespace(name="coal-abc"),
                            spec=SimpleNamespace(node_name=None, scheduler_name="x"),
                            status=SimpleNamespace(conditions=[cond])),
            SimpleNamespace(metadata=SimpleNamespace(name="water-abc"),
                            spec=SimpleNamespace(node_name="node-1", scheduler_name="x"),
                            status=SimpleNamespace(conditions=[]))]
    text = unbound_message("place-1", pods, 2, 60)
    assert text.endswith("the scheduler found no node for coal-abc: 0/5 nodes are "
                         "available: 5 Node(s) does not meet ...")


def test_the_kwok_placer_gives_the_runs_options_to_the_real_plugins(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from harness.backends.k8s import pluginsched
    from harness.backends.kwok import KwokPlacer
    from schedulers.registry import policy_spec

    econ = Economy.from_mapping({"name": "pair", "items": {"db": {}, "web": {"inputs": {"db": 1}}}})
    node_objs = [SimpleNamespace(metadata=SimpleNamespace(name=f"node-{i}", labels={Z: "za"}))
                 for i in (1, 2)]
    cluster = SimpleNamespace(core_v1=lambda: SimpleNamespace(
        list_node=lambda: SimpleNamespace(items=node_objs)), api_client=lambda: "api")
    written = []
    monkeypatch.setattr(pluginsched, "install_setup", lambda api, setup: written.append(setup))
    placer = KwokPlacer(econ, 2, options={"diktyo": {"max_network_cost": 1, "weight": 3}})
    found = policy_spec("diktyo").kubernetes
    assert found is not None
    made = placer._plugin_setup(cluster, "diktyo", found, None)
    assert written == [made]
    web = made.objects[0]["spec"]["workloads"][1]
    assert web["dependencies"][0]["maxNetworkCost"] == 1
    assert made.plugins["multiPoint"]["enabled"][0]["weight"] == 3
