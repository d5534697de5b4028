"""Topologies: the model, presets, file errors, links per pair, labels for every consumer."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.backends.emulated.links import LinkModel
from harness.backends.emulated.mesh import water_marks
from harness.backends.k8s.nodes import NodeSpec, node_manifest
from harness.backends.layoutspace import LayoutSpace
from results.config import ConfigError, ExperimentConfig, build_config
from results.links import LINK_PRESETS, LinkProfile
from results.topology import (
    REGION_LABEL,
    ZONE_LABEL,
    Topology,
    TopologyError,
    load_topology,
    resolve_topology,
)
from schedulers import Pod, canonical_layout, get_policy, uniform_nodes
from settlers.economy import load_economy

EDGE = LINK_PRESETS["edge"]

TWO_ZONES = """\
name: two-zones
nodes:
  - {name: node-1, labels: {topology.kubernetes.io/region: r1, topology.kubernetes.io/zone: a}}
  - {name: node-2, labels: {topology.kubernetes.io/region: r1, topology.kubernetes.io/zone: a}}
  - name: node-3
    labels: {topology.kubernetes.io/region: r1, topology.kubernetes.io/zone: b}
    cpu: 2500m
links:
  same-zone: lan
  cross-zone: {latency_ms: 3, bandwidth_mbps: 200}
"""


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topo.yaml"
    path.write_text(text)
    return path


# -- the model and the presets ------------------------------------------------------

def test_uniform_is_todays_cluster() -> None:
    topo = resolve_topology(None, nodes=4, link="edge")
    assert topo.name == "uniform"
    assert topo.node_names == ["node-1", "node-2", "node-3", "node-4"]
    assert all(not n.labels and n.cpu is None for n in topo.nodes)
    assert topo.used_classes() == ["same-zone"]
    assert topo.link("node-1", "node-3") == EDGE
    assert topo.link("node-2", "node-2") is None      # same node: local
    # The scheduler models see exactly uniform_nodes().
    assert [(n.name, n.signature()) for n in topo.model_nodes()] == \
        [(n.name, n.signature()) for n in uniform_nodes(4)]


def test_zones_preset_deals_nodes_over_three_zones_of_one_region() -> None:
    topo = resolve_topology("zones", nodes=5, link="edge")
    zones = [n.labels[ZONE_LABEL] for n in topo.nodes]
    assert zones == ["zone-a", "zone-b", "zone-c", "zone-a", "zone-b"]
    assert {n.labels[REGION_LABEL] for n in topo.nodes} == {"region-1"}
    assert topo.pair_class("node-1", "node-4") == "same-zone"
    assert topo.pair_class("node-1", "node-2") == "cross-zone"
    assert topo.link("node-1", "node-4") == LINK_PRESETS["lan"]
    assert topo.link("node-1", "node-2") == EDGE          # the run's link, across zones
    assert resolve_topology("zones", nodes=5, link="wan").link("node-1", "node-2") == \
        LINK_PRESETS["wan"]


def test_edge_cloud_preset_has_a_small_edge_and_a_far_cloud() -> None:
    topo = resolve_topology("edge-cloud", nodes=5, link="edge")
    edge = [n for n in topo.nodes if n.labels[REGION_LABEL] == "edge"]
    assert [n.name for n in edge] == ["node-1", "node-2"]
    assert all(n.cpu == "2" for n in edge)
    assert topo.pair_class("node-1", "node-2") == "same-zone"
    assert topo.pair_class("node-1", "node-3") == "cross-region"
    assert topo.pair_class("node-3", "node-4") == "cross-zone"
    assert topo.pair_class("node-3", "node-5") == "same-zone"
    assert topo.link("node-2", "node-5") == LINK_PRESETS["wan"]
    assert topo.used_classes() == ["same-zone", "cross-zone", "cross-region"]
    with pytest.raises(TopologyError, match="at least 3 nodes"):
        resolve_topology("edge-cloud", nodes=2)


def test_a_file_loads_with_link_presets_by_name(tmp_path: Path) -> None:
    topo = resolve_topology(str(_file(tmp_path, TWO_ZONES)))
    assert topo.name == "two-zones"
    assert topo.link("node-1", "node-2") == LINK_PRESETS["lan"]
    assert topo.link("node-2", "node-3") == LinkProfile(3.0, 200.0)
    nodes = topo.model_nodes(cpu_m=4000)
    assert [n.cpu_m for n in nodes] == [4000, 4000, 2500]
    assert nodes[2].labels[ZONE_LABEL] == "b"
    assert "two-zones: 3 node(s) in 2 zone(s), 1 region(s)" in topo.describe()


def test_unlimited_bandwidth_is_null(tmp_path: Path) -> None:
    text = TWO_ZONES.replace("{latency_ms: 3, bandwidth_mbps: 200}", "{latency_ms: 1}")
    topo = load_topology(_file(tmp_path, text))
    assert math.isinf(topo.link("node-1", "node-3").bandwidth_mbps)  # type: ignore[union-attr]
    assert Topology.model_validate(topo.model_dump(mode="json")) == topo   # JSON round trip


@pytest.mark.parametrize(("change", "message"), [
    (("links:", "colour: red\nlinks:"), "colour: Extra inputs are not permitted"),
    (("cpu: 2500m", "cpu: 2500m\n    gpu: 1"), "nodes.2.gpu: Extra inputs are not permitted"),
    (("latency_ms: 3", "latency_ms: -3"), "greater than or equal to 0"),
    (("bandwidth_mbps: 200", "bandwidth_mbps: 0"), "greater than 0"),
    (("same-zone: lan", "same-zone: fibre"), "unknown link preset 'fibre'"),
    (("  cross-zone: {latency_ms: 3, bandwidth_mbps: 200}\n", ""),
     r"no link given for pair class\(es\) cross-zone \(e.g. node-1 - node-3\)"),
    (("name: node-3", "name: node-2"), "node name\\(s\\) listed twice: node-2"),
    (("name: node-3", "name: Node_3"), "invalid node name 'Node_3'"),
    (("cpu: 2500m", "cpu: lots"), "invalid CPU quantity 'lots'"),
    (("same-zone: lan", "same-node: lan"), "links.same-node"),
])
def test_bad_files_say_what_is_wrong(tmp_path: Path, change: tuple[str, str],
                                     message: str) -> None:
    text = TWO_ZONES.replace(*change)
    assert text != TWO_ZONES
    with pytest.raises(TopologyError, match=message) as info:
        load_topology(_file(tmp_path, text))
    assert str(info.value).startswith(str(tmp_path / "topo.yaml"))


def test_not_a_preset_nor_a_file() -> None:
    with pytest.raises(TopologyError, match=r"'zonez' is neither a preset \(uniform, zones, "
                                            r"edge-cloud\) nor an existing file"):
        resolve_topology("zonez")


def test_not_yaml_or_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="not valid YAML"):
        load_topology(_file(tmp_path, "nodes: [\n"))
    with pytest.raises(TopologyError, match="a mapping with nodes: and links:"):
        load_topology(_file(tmp_path, "- node-1\n"))


# -- the link model, per pair -------------------------------------------------------

def test_link_model_charges_each_pair_its_class() -> None:
    topo = resolve_topology("zones", nodes=3, link=LinkProfile(5.0, 8.0))  # 1 B/us across
    model = LinkModel(EDGE, topo.link_table())
    lan = LINK_PRESETS["lan"]
    # node-1 and node-2 are in different zones; node-1 with itself never reaches the model.
    assert model.schedule("node-1", "node-2", 1000, now=0.0) == pytest.approx(0.001 + 0.005)
    model = LinkModel(EDGE, resolve_topology("zones", nodes=4).link_table())
    assert model.schedule("node-1", "node-4", 1000, now=0.0) == pytest.approx(
        1000 * lan.seconds_per_byte + lan.latency_s)


def test_classes_share_a_nodes_uplink() -> None:
    topo = resolve_topology("edge-cloud", nodes=3, link="edge")
    model = LinkModel(EDGE, topo.link_table())
    wan = LINK_PRESETS["wan"]
    lan = LINK_PRESETS["lan"]
    to_cloud = model.schedule("node-1", "node-3", 1_000_000, now=0.0)
    to_edge = model.schedule("node-1", "node-2", 1_000_000, now=0.0)
    assert to_cloud == pytest.approx(1e6 * wan.seconds_per_byte + wan.latency_s)
    # Queued behind the WAN chunk on node-1's uplink, then its own LAN rate.
    assert to_edge == pytest.approx(1e6 * (wan.seconds_per_byte + lan.seconds_per_byte)
                                    + lan.latency_s)


def test_uniform_topology_schedules_exactly_like_one_profile() -> None:
    one = LinkModel(EDGE)
    per_pair = LinkModel(EDGE, resolve_topology("uniform", nodes=3).link_table())
    sends = [("node-1", "node-2", 70_000, 0.0), ("node-3", "node-2", 1_000, 0.0001),
             ("node-1", "node-3", 5_000, 0.002), ("node-2", "node-1", 300, 0.01)]
    assert [one.schedule(*s) for s in sends] == [per_pair.schedule(*s) for s in sends]


def test_mesh_buffers_fit_the_largest_bandwidth_delay_product() -> None:
    # edge-cloud's links: lan (0.1 ms x 1000M), the run's link (edge) and wan (10 ms x 50M)
    topo = resolve_topology("edge-cloud", nodes=4)
    bdp = {p: p.latency_s * p.bandwidth_mbps * 1e6 / 8 for p in topo.profiles()}
    assert len(bdp) == 3
    for profile, nbytes in bdp.items():
        assert water_marks(profile)[0] >= 2 * nbytes   # the low mark covers the BDP twice


# -- labels reach the models, canonical layouts, kwok ---------------------------------

def test_canonical_layouts_keep_zones_apart() -> None:
    space = LayoutSpace.for_topology(load_economy(), 3, resolve_topology("zones", nodes=4))
    a = {"flour-0": "node-1", "grain-0": "node-2"}
    # node-1 and node-4 share zone-a: swapping them is the same layout ...
    assert space.canonical(a) == space.canonical({"flour-0": "node-4", "grain-0": "node-2"})
    # ... node-1 and node-3 are in different zones (different links): not the same.
    assert space.canonical(a) != space.canonical({"flour-0": "node-3", "grain-0": "node-2"})
    assert space.node_names == ["node-1", "node-2", "node-3", "node-4"]


def test_canonical_layouts_keep_capacities_apart(tmp_path: Path) -> None:
    nodes = load_topology(_file(tmp_path, TWO_ZONES.replace(
        "topology.kubernetes.io/zone: b}", "topology.kubernetes.io/zone: a}").replace(
        "  cross-zone: {latency_ms: 3, bandwidth_mbps: 200}\n", ""))).model_nodes()
    assert canonical_layout({"a-0": "node-1"}, nodes) == canonical_layout({"a-0": "node-2"}, nodes)
    assert canonical_layout({"a-0": "node-1"}, nodes) != canonical_layout({"a-0": "node-3"}, nodes)


def test_without_a_topology_the_layout_space_is_unchanged() -> None:
    economy = load_economy()
    old = LayoutSpace.uniform(economy, 5)
    new = LayoutSpace.for_topology(economy, 5, None)
    uniform = LayoutSpace.for_topology(economy, 5, resolve_topology("uniform", nodes=5))
    placement = dict(zip(old.pod_names, old.node_names * 10, strict=False))
    assert old.canonical(placement) == new.canonical(placement) == uniform.canonical(placement)


def test_kube_default_spreads_over_the_zones_it_sees() -> None:
    # Three replicas on six nodes, two per zone: PodTopologySpread's zone term (it reads
    # the zone label) puts one in each zone, whatever the tie-breaking seed.
    pods = [Pod(name=f"web-{i}", workload="web", cpu_m=100, labels={"app": "web"})
            for i in range(3)]
    nodes = resolve_topology("zones", nodes=6).model_nodes()
    by_zone = {n.name: n.labels[ZONE_LABEL] for n in nodes}
    for seed in range(10):
        result = get_policy("kube_default", seed=seed).schedule(pods, nodes)
        assert len({by_zone[node] for node in result.assignments.values()}) == 3, seed


def test_kwok_nodes_carry_the_topology_labels_and_cpu() -> None:
    topo = resolve_topology("edge-cloud", nodes=3)
    spec = NodeSpec(per_node={n.name: dict(n.labels) for n in topo.nodes},
                    node_cpu={n.name: n.cpu for n in topo.nodes if n.cpu})
    edge = node_manifest("node-1", 0, spec)
    cloud = node_manifest("node-3", 2, spec)
    assert edge["metadata"]["labels"][REGION_LABEL] == "edge"
    assert edge["metadata"]["labels"]["kubernetes.io/hostname"] == "node-1"
    assert edge["status"]["allocatable"]["cpu"] == "2"
    assert cloud["metadata"]["labels"][ZONE_LABEL] == "cloud-a"
    assert cloud["status"]["allocatable"]["cpu"] == "4"


# -- the experiment config and its record ---------------------------------------------

def test_config_without_topology_records_as_before() -> None:
    config = build_config()
    assert config.topology is None
    assert "topology" not in config.model_dump()
    assert "topology" not in config.model_dump_json()


def test_config_resolves_a_preset_into_the_record() -> None:
    config = build_config(overrides={"topology": "zones", "nodes": 6, "link": "wan"})
    assert config.topology is not None and config.topology.name == "zones"
    assert config.nodes == 6
    stored = config.model_dump(mode="json")
    assert stored["topology"]["links"]["cross-zone"] == {"latency_ms": 10.0,
                                                         "bandwidth_mbps": 50.0}
    again = ExperimentConfig.model_validate(stored, context={"recorded": True})
    assert again.topology == config.topology


def test_config_takes_the_node_count_from_a_file(tmp_path: Path) -> None:
    path = _file(tmp_path, TWO_ZONES)
    assert build_config(overrides={"topology": str(path)}).nodes == 3
    with pytest.raises(ConfigError, match="nodes is 5 but topology 'two-zones' has 3 nodes"):
        build_config(overrides={"topology": str(path), "nodes": 5})


def test_config_refuses_a_topology_on_the_kubernetes_backend() -> None:
    with pytest.raises(ConfigError, match="reads its nodes, their labels and its network"):
        build_config(overrides={"topology": "zones", "backend": "kubernetes"})


def test_the_manifest_records_and_the_report_states_the_topology() -> None:
    from analysis.report import _nodes_text
    from harness.backends.registry import describe
    from results.manifest import Manifest, new_manifest

    manifest = new_manifest(build_config(overrides={"topology": "zones"}), describe("local"))
    again = Manifest.model_validate_json(manifest.model_dump_json(), context={"recorded": True})
    assert again.config.topology == manifest.config.topology
    assert _nodes_text(again).startswith("topology zones: 5 node(s) in 3 zone(s)")
    plain = new_manifest(build_config(), describe("local"))
    assert _nodes_text(plain).startswith("5 identical nodes, link preset `edge`")
