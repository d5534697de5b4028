"""The scenario runner's pure parts: the scheduler's view of the cluster, degraded links."""

from __future__ import annotations

import pytest

import schedulers
from harness.scenario.world import World, WorldError
from results.scenario import Event
from schedulers.network import Link, NodeNetwork
from settlers.economy import load_economy


def _world(standby: tuple[str, ...] = ()) -> World:
    economy = load_economy()
    return World(economy, schedulers.uniform_nodes(3), schedulers.pods_for_economy(economy),
                 standby=standby)


def test_standby_nodes_start_cordoned_and_deploy_avoids_them() -> None:
    w = _world(standby=("node-3",))
    placement = w.deploy(w.policy("kube_default", traffic=None, seed=1, network=None,
                                  options={}))
    assert set(placement) == set(w.pods) and "node-3" not in set(placement.values())
    w.cordon("node-3", on=False)
    assert not w.nodes["node-3"].unschedulable


def test_drained_pods_are_placed_again_elsewhere_and_renamed_on_move() -> None:
    w = _world()
    policy = w.policy("kube_default", traffic=None, seed=1, network=None, options={})
    w.deploy(policy)
    w.cordon("node-1")
    for pod in w.on_node("node-1"):
        dst = w.place_again(policy, pod)
        assert dst != "node-1"
        item = w.pods[pod].workload
        w.moved(pod, f"{item}-9", dst)
        assert w.placement[f"{item}-9"] == dst and pod not in w.placement
        assert w.pods[f"{item}-9"].workload == item
    assert w.on_node("node-1") == []


def test_place_again_says_when_nowhere_is_left() -> None:
    w = _world()
    policy = w.policy("kube_default", traffic=None, seed=1, network=None, options={})
    w.deploy(policy)
    for n in ("node-1", "node-2", "node-3"):
        w.cordon(n)
    with pytest.raises(WorldError, match="found no node"):
        w.place_again(policy, next(iter(w.placement)))


def test_degraded_changes_only_links_touching_the_node() -> None:
    from harness.scenario.runner import degraded

    base = NodeNetwork.flat(0.1, 1e9)
    e = Event(kind="degrade", node="node-2", latency_ms=30)
    net = degraded(base, ["node-1", "node-2", "node-3"], e)
    assert net.delay_ms("node-1", "node-2") == 30 and net.delay_ms("node-2", "node-3") == 30
    assert net.delay_ms("node-1", "node-3") == 0.1
    assert net.bandwidth("node-1", "node-2") == 1e9     # unchanged: only latency given
    slow = degraded(None, ["node-1", "node-2"],
                    Event(kind="degrade", node="node-1", bandwidth_mbps=80))
    assert slow.link("node-1", "node-2") == Link(0.0, 1e7)


def test_policies_with_a_rebalancer_get_a_static_twin() -> None:
    from harness.experiment import Reporter
    from harness.scenario import _runs
    from results.config import build_config
    from results.scenario import resolve_scenario

    cfg = build_config(overrides={"schedulers": ["netmarks", "random"]})
    shift = resolve_scenario("shift")
    runs = _runs(cfg, shift, None, load_economy(), None, Reporter())  # type: ignore[arg-type]
    assert [r.label for r in runs] == ["kube_default", "netmarks", "netmarks-static", "random"]
    assert runs[1].seed == runs[2].seed            # paired: the same day one and orders
    off = shift.model_copy(update={"static_twins": False})
    assert [r.label for r in _runs(cfg, off, None, load_economy(), None,  # type: ignore[arg-type]
                                   Reporter())] == ["kube_default", "netmarks", "random"]
