"""Each default plugin against cases computed by hand from the upstream formulas."""

from __future__ import annotations

import math

from schedulers.model import (
    ZONE_LABEL,
    Node,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    Pod,
    PodAffinityTerm,
    PreferredNodeTerm,
    Taint,
    Toleration,
)
from schedulers.plugins import (
    balanced_allocation,
    image_locality,
    interpod_affinity,
    node_affinity,
    node_resources_fit,
    node_unschedulable,
    pod_topology_spread,
    taint_toleration,
)
from schedulers.plugins._normalize import default_normalize, go_round
from schedulers.state import ClusterState

GI = 2**30
MI = 2**20


def _state(*nodes: Node) -> ClusterState:
    return ClusterState(list(nodes))


def test_least_allocated_hand_computed() -> None:
    # Node: 4000m, 8Gi, 1000m/2Gi already (non-zero) requested; pod 500m/1Gi.
    # cpu: (4000-1500)*100/4000 = 62.5 -> 62 ; mem: (8-3)*100/8 = 62.5 -> 62 ; (62+62)/2 = 62
    s = _state(Node("a", 4000, 8 * GI))
    s.bind(Pod("x", "w", cpu_m=1000, memory=2 * GI), "a")
    pod = Pod("p", "v", cpu_m=500, memory=GI)
    assert node_resources_fit.new().score(pod, s.infos, s) == [62]


def test_least_allocated_charges_defaults_for_best_effort() -> None:
    # Best-effort pods count as 100m / 200Mi: cpu (1000-200)*100/1000 = 80,
    # mem (1000Mi-400Mi)*100/1000Mi = 60 -> (80+60)/2 = 70.
    s = _state(Node("a", 1000, 1000 * MI))
    s.bind(Pod("x", "w"), "a")
    assert node_resources_fit.new().score(Pod("p", "v"), s.infos, s) == [70]
    assert node_resources_fit.least_requested_score(5, 4) == 0  # over capacity


def test_fit_filter() -> None:
    s = _state(Node("a", 1000, GI, max_pods=2))
    fit = node_resources_fit.new()
    s.bind(Pod("x", "w", cpu_m=800, memory=MI), "a")
    assert fit.filter(Pod("p", "v", cpu_m=300), s.infos[0], s) == "Insufficient cpu"
    assert fit.filter(Pod("p", "v", cpu_m=200), s.infos[0], s) is None
    assert fit.filter(Pod("p", "v", memory=2 * GI), s.infos[0], s) == "Insufficient memory"
    assert fit.filter(Pod("p", "v"), s.infos[0], s) is None  # no request always fits
    s.bind(Pod("y", "w"), "a")
    assert fit.filter(Pod("p", "v"), s.infos[0], s) == "Too many pods"


def test_balanced_allocation_hand_computed() -> None:
    # cpu 1000/4000 = 0.25, mem 4Gi/8Gi = 0.5 -> std 0.125 -> int(87.5) = 87
    s = _state(Node("a", 4000, 8 * GI))
    s.bind(Pod("x", "w", cpu_m=500, memory=3 * GI), "a")
    pod = Pod("p", "v", cpu_m=500, memory=GI)
    assert balanced_allocation.new().score(pod, s.infos, s) == [87]
    # Best-effort pods are skipped (kubernetes#129138).
    assert balanced_allocation.new().score(Pod("q", "v"), s.infos, s) is None
    # cpu capped at 1, mem 1/8: std = 0.4375 -> int(56.25) = 56
    assert balanced_allocation.balanced_score([5000, 1], [4000, 8]) == 56


def test_taint_toleration() -> None:
    hard = Node("hard", 1000, GI, taints=[Taint("gpu", "yes", "NoSchedule")])
    soft2 = Node("soft2", 1000, GI, taints=[Taint("a", "", "PreferNoSchedule"),
                                             Taint("b", "", "PreferNoSchedule")])
    soft1 = Node("soft1", 1000, GI, taints=[Taint("a", "", "PreferNoSchedule")])
    clean = Node("clean", 1000, GI)
    s = _state(hard, soft2, soft1, clean)
    tt = taint_toleration.new()
    pod = Pod("p", "w")
    assert tt.filter(pod, s.infos[0], s) is not None
    assert tt.filter(Pod("t", "w", tolerations=[Toleration("gpu", "Equal", "yes")]),
                     s.infos[0], s) is None
    assert tt.filter(Pod("t", "w", tolerations=[Toleration(operator="Exists")]),
                     s.infos[0], s) is None
    # raw counts 2, 1, 0 -> reverse-normalised 100 - 100*raw/2 = 0, 50, 100
    assert tt.score(pod, s.infos[1:], s) == [0, 50, 100]
    tolerant = Pod("t", "w", tolerations=[Toleration("b", "Exists", effect="PreferNoSchedule")])
    assert tt.score(tolerant, s.infos[1:], s) == [0, 0, 100]  # raw 1, 1, 0
    assert tt.score(pod, [s.infos[3]], s) == [100]  # max 0 -> all 100


def test_node_affinity() -> None:
    a = Node("a", 1000, GI, labels={"disk": "ssd", "gen": "5"})
    b = Node("b", 1000, GI, labels={"disk": "hdd", "gen": "3"})
    s = _state(a, b)
    na = node_affinity.new()
    ssd = NodeSelectorTerm((NodeSelectorRequirement("disk", "In", ("ssd",)),))
    new_gen = NodeSelectorTerm((NodeSelectorRequirement("gen", "Gt", ("4",)),))
    pod = Pod("p", "w", required_node_terms=[ssd])
    assert na.filter(pod, s.infos[0], s) is None
    assert na.filter(pod, s.infos[1], s) is not None
    assert na.filter(Pod("q", "w", node_selector={"disk": "hdd"}), s.infos[1], s) is None
    pref = Pod("r", "w", node_preferences=[PreferredNodeTerm(30, ssd),
                                           PreferredNodeTerm(10, new_gen)])
    # raw a = 40, b = 0 -> 100, 0
    assert na.score(pref, s.infos, s) == [100, 0]
    assert na.score(Pod("s", "w"), s.infos, s) is None


def test_node_unschedulable() -> None:
    s = _state(Node("a", 1000, GI, unschedulable=True))
    nu = node_unschedulable.new()
    assert nu.filter(Pod("p", "w"), s.infos[0], s) is not None
    ok = Pod("p", "w", tolerations=[Toleration("node.kubernetes.io/unschedulable",
                                               "Exists", effect="NoSchedule")])
    assert nu.filter(ok, s.infos[0], s) is None


def test_pod_topology_spread_hostname_only() -> None:
    # 3 feasible nodes without zones: weight ln(3+2); node a has 2 pods of w, b 1, c 0.
    # raw = round(cnt*ln5 + 2): a = round(5.219) = 5, b = round(3.609) = 4, c = 2
    # normalise 100*(max+min-s)/max: a = 100*2/5 = 40, b = 100*3/5 = 60, c = 100*5/5 = 100
    s = _state(Node("a", 4000, GI), Node("b", 4000, GI), Node("c", 4000, GI))
    s.bind(Pod("w-0", "w"), "a")
    s.bind(Pod("w-1", "w"), "a")
    s.bind(Pod("w-2", "w"), "b")
    s.bind(Pod("v-0", "v"), "c")  # other workloads do not count
    assert round(2 * math.log(5) + 2) == 5
    assert pod_topology_spread.new().score(Pod("w-3", "w"), s.infos, s) == [40, 60, 100]
    # Nothing placed yet: every node raw 2 -> all 100.
    assert pod_topology_spread.new().score(Pod("u-0", "u"), s.infos, s) == [100, 100, 100]


def test_pod_topology_spread_with_zones() -> None:
    # Zones z1 = {a, b}, z2 = {c}. Pods of w: a 1, c 1. Feasible: a, b, c.
    # host weight ln(5), zone weight ln(2+2) = ln 4.
    # a: 1*ln5 + 2 + 1*ln4 + 4 = 1.609+2+1.386+4 = 8.995 -> 9
    # b: 0 + 2 + 1*ln4 + 4 = 7.386 -> 7 ; c: 1*ln5 + 2 + 1*ln4 + 4 -> 9
    # normalise: a = 100*(9+7-9)/9 = 77, b = 100*9/9 = 100, c = 77
    s = _state(Node("a", 4000, GI, labels={ZONE_LABEL: "z1"}),
               Node("b", 4000, GI, labels={ZONE_LABEL: "z1"}),
               Node("c", 4000, GI, labels={ZONE_LABEL: "z2"}))
    s.bind(Pod("w-0", "w"), "a")
    s.bind(Pod("w-1", "w"), "c")
    assert pod_topology_spread.new().score(Pod("w-2", "w"), s.infos, s) == [77, 100, 77]


def test_interpod_affinity_preferred() -> None:
    s = _state(Node("a", 4000, GI), Node("b", 4000, GI), Node("c", 4000, GI))
    s.bind(Pod("db-0", "db", labels={"app": "db"}), "a")
    s.bind(Pod("cache-0", "cache", labels={"app": "cache"}), "b")
    pod = Pod("web-0", "web", labels={"app": "web"}, pod_affinity=[
        PodAffinityTerm((("app", "db"),), weight=10),
        PodAffinityTerm((("app", "cache"),), weight=5, anti=True),
    ])
    # raw a = 10, b = -5, c = 0 -> (s-min)/(max-min)*100: 100, 0, 33
    assert interpod_affinity.new().score(pod, s.infos, s) == [100, 0, 33]
    assert interpod_affinity.new().score(Pod("x", "x"), s.infos, s) is None
    # Existing pods' preferred terms pull a matching incoming pod (symmetry).
    s.bind(Pod("fan-0", "fan", pod_affinity=[PodAffinityTerm((("app", "web"),), weight=4)]),
           "c")
    assert interpod_affinity.new().score(Pod("web-1", "web", labels={"app": "web"}),
                                         s.infos, s) == [0, 0, 100]


def test_image_locality() -> None:
    # Image of 500 MiB on 2 of 4 nodes: sum = 250 MiB; (250-23)*100/(1000-23) = 23
    img = {"registry/app:1": 500 * MI}
    s = _state(Node("a", 1, 1, images=dict(img)), Node("b", 1, 1, images=dict(img)),
               Node("c", 1, 1), Node("d", 1, 1))
    pod = Pod("p", "w", image="registry/app:1")
    assert image_locality.new().score(pod, s.infos, s) == [23, 23, 0, 0]
    assert image_locality.image_score(5 * MI) == 0
    assert image_locality.image_score(2000 * MI) == 100


def test_normalize_helpers() -> None:
    assert default_normalize([0, 2, 4], reverse=False) == [0, 50, 100]
    assert default_normalize([0, 2, 4], reverse=True) == [100, 50, 0]
    assert default_normalize([0, 0], reverse=True) == [100, 100]
    assert go_round(2.5) == 3 and go_round(3.5) == 4 and go_round(-2.5) == -3
