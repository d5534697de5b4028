"""The TraDE-style mapper (`trade`): hand-worked placements on the zones and flat networks,
capacity, no traffic, and the network file its binder reads."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from results.topology import resolve_topology
from schedulers import Node, Pod, TrafficMatrix, get_policy, policy_spec
from schedulers.cli import app
from schedulers.netfile import NetworkFileError, read_network, write_network
from schedulers.network import Link, NodeNetwork
from schedulers.policies.trade import TradePolicy, stress_order
from schedulers.state import ClusterState

# zones, 6 nodes: node-1 and node-4 in zone-a, node-2/5 in zone-b, node-3/6 in zone-c;
# 0.1 ms one-way within a zone, 1.5 ms across (the edge link).
ZONES = resolve_topology("zones", nodes=6, link="edge")


def _pods(*spec: tuple[str, int], cpu_m: int = 100) -> list[Pod]:
    return [Pod(f"{w}-{i}", w, cpu_m=cpu_m, memory=2**26) for w, n in spec for i in range(n)]


def _trade(traffic: dict[tuple[str, str], float], network: NodeNetwork | None = None,
           **opts: object) -> TradePolicy:
    policy = get_policy("trade", traffic=TrafficMatrix(traffic), network=network, **opts)
    assert isinstance(policy, TradePolicy)
    return policy


def _zone(node: str) -> str:
    return ZONES.node(node).labels["topology.kubernetes.io/zone"]


def test_the_spec_says_traffic_network_and_a_binder() -> None:
    spec = policy_spec("trade")
    assert spec.uses_traffic and spec.uses_network and not spec.uses_economy
    assert spec.kubernetes is not None
    assert (spec.kubernetes.scheduler_name, spec.kubernetes.kind) == ("trade", "custom")
    assert spec.kubernetes.host_command[0] == "trade"


def test_heavy_talkers_share_a_node_when_they_fit() -> None:
    # a-b 1000 B/s, c-d 10 B/s, nothing across: each pair on one node (cost 0).
    result = _trade({("a", "b"): 1000, ("c", "d"): 10}, ZONES.network()).schedule(
        _pods(("a", 1), ("b", 1), ("c", 1), ("d", 1)), ZONES.model_nodes())
    at = result.assignments
    assert at["a-0"] == at["b-0"] and at["c-0"] == at["d-0"]
    assert result.info["traffic_x_delay"] == 0.0


def test_on_zones_a_partner_that_cannot_share_the_node_stays_in_the_zone() -> None:
    # 3 CPU pods on 4 CPU nodes: no two share a node. a goes first (heaviest pair,
    # every node ties, spread: node-1); b's cheapest feasible node is node-4, the other
    # zone-a node (0.1 ms), not a cross-zone one (1.5 ms). Then c (ties: least utilised,
    # lowest name: node-2) pulls d into zone-b: node-5.
    result = _trade({("a", "b"): 1000, ("c", "d"): 10}, ZONES.network()).schedule(
        _pods(("a", 1), ("b", 1), ("c", 1), ("d", 1), cpu_m=3000), ZONES.model_nodes())
    assert result.assignments == {"a-0": "node-1", "b-0": "node-4", "c-0": "node-2",
                                  "d-0": "node-5"}
    assert _zone("node-1") == _zone("node-4") and _zone("node-2") == _zone("node-5")
    # Both pairs cross a node inside a zone: (1000 + 10) B/s x 0.1 ms.
    assert result.info["traffic_x_delay"] == pytest.approx(101.0)


def test_on_edge_cloud_a_talker_that_does_not_fit_stays_out_of_the_wan() -> None:
    # node-1, node-2: the edge (2 CPU, 10 ms WAN to the cloud); node-3 (cloud-a) and
    # node-4 (cloud-b): 4 CPU, 1.5 ms apart. a and b share node-3 (least utilised after
    # placing: 1.5/4 < 1.5/2); c talks to both but node-3 is full: the other cloud zone
    # (2 x 1.5 ms), never the empty edge (2 x 10 ms).
    topo = resolve_topology("edge-cloud", nodes=4, link="edge")
    result = _trade({("a", "b"): 100.0, ("a", "c"): 50.0, ("b", "c"): 50.0},
                    topo.network()).schedule(_pods(("a", 1), ("b", 1), ("c", 1),
                                                   cpu_m=1500), topo.model_nodes())
    assert result.assignments == {"a-0": "node-3", "b-0": "node-3", "c-0": "node-4"}
    assert result.info["traffic_x_delay"] == pytest.approx(100 * 1.5)


def test_on_a_flat_network_it_is_traffic_only_co_location() -> None:
    # Without zones, b goes to any other node: the tie rule picks node-2, and the
    # layout is the same whatever the (uniform) delay, or with delays="flat".
    pods = _pods(("a", 1), ("b", 1), ("c", 1), ("d", 1), cpu_m=3000)
    nodes = ZONES.model_nodes()
    traffic = {("a", "b"): 1000.0, ("c", "d"): 10.0}
    layouts = [_trade(traffic, net).schedule(pods, nodes).assignments
               for net in (None, NodeNetwork.flat(), NodeNetwork.flat(5.0))]
    layouts.append(_trade(traffic, ZONES.network(), delays="flat").schedule(
        pods, nodes).assignments)
    assert all(layout == layouts[0] for layout in layouts)
    assert layouts[0] == {"a-0": "node-1", "b-0": "node-2", "c-0": "node-3", "d-0": "node-4"}
    # With room, the talkers share a node, as on the zones network.
    small = _trade(traffic).schedule(_pods(("a", 2), ("b", 2)), nodes).assignments
    assert Counter(small.values()) == Counter({"node-1": 2, "node-2": 2})
    assert small["a-0"] == small["b-0"] and small["a-1"] == small["b-1"]


def test_capacity_is_never_exceeded_and_the_rest_is_unschedulable() -> None:
    nodes = [Node("node-1", 1000, 2**30, max_pods=3), Node("node-2", 1000, 2**30)]
    pods = _pods(("a", 4), ("b", 4), cpu_m=300)  # 8 x 300m on 2 x 1000m: 6 fit
    result = _trade({("a", "b"): 50.0}).schedule(pods, nodes)
    assert len(result.assignments) == 6 and len(result.unschedulable) == 2
    state = ClusterState(nodes)
    by_name = {p.name: p for p in pods}
    for pod, node in result.assignments.items():
        assert state.by_name[node].fits(by_name[pod])
        state.bind(by_name[pod], node)
    assert not any(ni.fits(by_name[result.unschedulable[0]]) for ni in state.infos)


def test_running_pods_attract_and_stay() -> None:
    nodes = ZONES.model_nodes()
    running = [(Pod("db-0", "db", cpu_m=100), "node-5")]
    result = _trade({("api", "db"): 100.0}, ZONES.network()).schedule(
        _pods(("api", 1)), nodes, running=running)
    assert result.assignments == {"api-0": "node-5"} and not result.migrations


def test_no_traffic_spreads_deterministically() -> None:
    # Every node ties: least utilised first, then node-2 before node-10.
    nodes = [Node(f"node-{i}", 4000, 2**33) for i in (10, 2, 1)]
    pods = _pods(("x", 3), ("y", 3))
    first = _trade({}).schedule(pods, nodes)
    assert first.assignments == {"x-0": "node-1", "x-1": "node-2", "x-2": "node-10",
                                 "y-0": "node-1", "y-1": "node-2", "y-2": "node-10"}
    assert _trade({}).schedule(pods, list(reversed(nodes))).assignments == first.assignments
    packed = _trade({}, ties="pack").schedule(pods, nodes).assignments
    assert set(packed.values()) == {"node-1"}


def test_random_ties_follow_the_seed() -> None:
    nodes = ZONES.model_nodes()
    pods = _pods(("x", 4))
    runs = [_trade({}, seed=s, ties="random").schedule(pods, nodes).assignments
            for s in (1, 1, 2, 3, 4)]
    assert runs[0] == runs[1]
    assert len({tuple(sorted(r.items())) for r in runs}) > 1
    assert not _trade({}, ties="random").deterministic and _trade({}).deterministic


def test_stress_order_follows_the_sorted_pairs() -> None:
    traffic = TrafficMatrix({("c", "d"): 5.0, ("a", "b"): 9.0, ("b", "c"): 7.0})
    assert stress_order(traffic, ["z", "d", "y", "c", "b", "a"]) == ["a", "b", "c", "d", "y",
                                                                    "z"]


def test_the_order_pods_arrive_in_does_not_matter() -> None:
    # The binder sees the API's list order, the model creation order: same layout.
    pods = _pods(("a", 2), ("b", 2), ("quiet", 2), ("calm", 1))
    policy = _trade({("a", "b"): 10.0}, ZONES.network())
    first = policy.schedule(pods, ZONES.model_nodes()).assignments
    assert policy.schedule(list(reversed(pods)), ZONES.model_nodes()).assignments == first


def test_improvement_passes_never_cost_more() -> None:
    econ = {("flour", "grain"): 40.0, ("bread", "flour"): 30.0, ("bread", "water"): 9.0,
            ("beer", "grain"): 20.0, ("beer", "water"): 25.0, ("pig", "grain"): 5.0}
    pods = _pods(("flour", 2), ("grain", 3), ("bread", 2), ("water", 2), ("beer", 1),
                 ("pig", 2), cpu_m=1500)
    costs = [_trade(econ, ZONES.network(), passes=k).schedule(pods, ZONES.model_nodes())
             .info["traffic_x_delay"] for k in (0, 1, 5)]
    assert costs[1] <= costs[0] and costs[2] <= costs[1]


def test_options_are_checked() -> None:
    for bad in ({"passes": -1}, {"ties": "nearest"}, {"delays": "hops"},
                {"min_delay_ms": 0}):
        with pytest.raises(ValueError, match="trade"):
            get_policy("trade", **bad)


def test_an_unknown_node_counts_as_the_farthest() -> None:
    net = NodeNetwork.build(["n1", "n2"], lambda a, b: Link(2.0), "test")
    d = _trade({}, net).delay_matrix(["n1", "n2", "n3"])
    assert d.tolist() == [[0.0, 2.0, 2.0], [2.0, 0.0, 2.0], [2.0, 2.0, 0.0]]


def test_the_network_file_round_trips(tmp_path: Path) -> None:
    net = ZONES.network()
    back = read_network(write_network(net, tmp_path / "net.json"))
    names = ZONES.node_names
    assert all(back.link(a, b) == net.link(a, b) for a in names for b in names)
    assert len(json.loads((tmp_path / "net.json").read_text())["links"]) == 2
    mixed = NodeNetwork({("a", "b"): Link(1.0)}, Link(7.0), "mixed")
    back = read_network(write_network(mixed, tmp_path / "mixed.json"))
    assert back.delay_ms("a", "b") == 1.0 and back.delay_ms("a", "zz") == 7.0
    flat = read_network(write_network(NodeNetwork.flat(3.0), tmp_path / "flat.json"))
    assert flat.is_flat and flat.delay_ms("x", "y") == 3.0
    (tmp_path / "bad.json").write_text(
        '{"nodes": ["a", "b"], "links": [], "matrix": [[-1, 0], [0, -1]]}')
    with pytest.raises(NetworkFileError, match="link index 0 for a -> b"):
        read_network(tmp_path / "bad.json")


def test_the_binder_command_checks_its_options(tmp_path: Path) -> None:
    runner = CliRunner()
    assert "--network" in runner.invoke(app, ["trade", "--help"]).output
    bad = runner.invoke(app, ["trade", "--ties", "nearest", "--once"])
    assert bad.exit_code == 2 and "spread, pack, random" in bad.output
    (tmp_path / "n.json").write_text("[]")
    bad = runner.invoke(app, ["trade", "--network", str(tmp_path / "n.json"), "--once"])
    assert bad.exit_code == 2 and "JSON object" in bad.output


def test_on_kwok_only_trade_gets_the_topology_and_its_binder_a_network_file(
        tmp_path: Path) -> None:
    from harness.backends.k8s.hostsched import _network_args
    from harness.backends.kwok.placer import KwokPlacer

    placer = object.__new__(KwokPlacer)  # no cluster: choosing the network needs none
    placer._topology = ZONES
    net = placer._network("trade")
    assert net is not None and net.source == "topology zones"
    assert placer._network("firmament") is None and placer._network("nobody") is None
    placer._topology = None
    assert placer._network("trade") is None  # a flat network: the binder's default
    flag, path = _network_args(tmp_path, net)
    assert flag == "--network" and read_network(Path(path)).delay_ms("node-1", "node-4") == 0.1
    assert _network_args(tmp_path, None) == []


def test_in_chart_mode_the_kubernetes_backend_refuses_a_binder_the_chart_lacks() -> None:
    import asyncio
    from types import SimpleNamespace

    from harness.backends.base import BackendUnavailable
    from harness.backends.kubernetes.options import KubernetesOptions
    from harness.backends.kubernetes.placer import KubernetesPlacer

    placer = object.__new__(KubernetesPlacer)  # no cluster: the check comes first
    placer.release = SimpleNamespace(options=KubernetesOptions(schedulers="chart"))
    with pytest.raises(BackendUnavailable, match="no component for the trade binder"):
        asyncio.run(placer.place("trade", 1))
