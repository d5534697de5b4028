"""NetMARKS score: hand-computed cases, scaling, no-data behaviour, the policy."""

from __future__ import annotations

from schedulers import (
    Pod,
    TrafficMatrix,
    example_traffic_path,
    get_policy,
    inter_node_traffic,
    pods_for_economy,
    uniform_nodes,
)
from schedulers.plugins.netmarks import extender_scores, raw_scores
from settlers.economy import load_economy

T = TrafficMatrix({("web", "db"): 300.0, ("db", "web"): 100.0, ("web", "cache"): 50.0})


def test_raw_score_is_traffic_with_pods_on_the_node() -> None:
    # Node 1 has db (the only replica): between(web, db) = 300 + 100 = 400.
    # Node 2 has cache-0 and cache-1 of 2 replicas: 50 * 2/2 = 50; node 3 has 1 of them: 25.
    counts = [{"db": 1}, {"cache": 2}, {"cache": 1, "other": 4}, {}]
    totals = {"db": 1, "cache": 3, "other": 4}
    raw = raw_scores("web", counts, totals, T)
    assert raw == [400.0, 50 * 2 / 3, 50 * 1 / 3, 0.0]
    # Scaled to 0..10, the best node 10, half up: 10, 0.83 -> 1, 0.42 -> 0, 0
    assert extender_scores(raw) == [10, 1, 0, 0]


def test_no_data_means_no_vote() -> None:
    assert extender_scores(raw_scores("web", [{"db": 1}], {"db": 1}, TrafficMatrix())) == [0]
    assert extender_scores(raw_scores("lonely", [{"db": 1}], {"db": 1}, T)) == [0]
    assert extender_scores([]) == []


def test_netmarks_colocates_talkers_and_kube_default_does_not_care() -> None:
    pods = [Pod("db-0", "db", cpu_m=100), Pod("web-0", "web", cpu_m=100)]
    nm = [get_policy("netmarks", traffic=T, seed=s, queue_jitter=0).schedule(
        pods, uniform_nodes(4)).assignments for s in range(20)]
    assert all(a["db-0"] == a["web-0"] for a in nm)
    kd = [get_policy("kube_default", seed=s, queue_jitter=0).schedule(
        pods, uniform_nodes(4)).assignments for s in range(20)]
    assert sum(a["db-0"] == a["web-0"] for a in kd) == 0  # LeastAllocated spreads them


def test_netmarks_cuts_inter_node_traffic_on_settlers() -> None:
    settlers_pods = pods_for_economy(load_economy())
    settlers_traffic = TrafficMatrix.from_file(example_traffic_path())

    def share(name: str) -> float:
        values = []
        for s in range(10):
            r = get_policy(name, traffic=settlers_traffic, seed=s).schedule(
                settlers_pods, uniform_nodes(5))
            crossing, total = inter_node_traffic(r.assignments, settlers_traffic)
            values.append(crossing / total)
        return sum(values) / len(values)

    assert share("netmarks") < 0.6 * share("kube_default")
