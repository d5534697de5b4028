"""The public surface other parts of the testbed code against (interface 4)."""

from __future__ import annotations

import pytest

import schedulers
from schedulers import (
    Policy,
    UnknownPolicyError,
    available_policies,
    get_policy,
    pods_for_economy,
    uniform_nodes,
)
from settlers.economy import load_economy


def test_exports_are_sorted_and_exist() -> None:
    assert schedulers.__all__ == sorted(schedulers.__all__)
    for name in schedulers.__all__:
        assert hasattr(schedulers, name), name


def test_registry_has_every_policy_and_rejects_unknown_names() -> None:
    # Built-ins first; plug-ins a developer has installed may follow.
    assert available_policies()[:5] == ["kube_default", "netmarks", "firmament", "random",
                                        "optimal"]
    for name in available_policies()[:5]:
        policy = get_policy(name, seed=1)
        assert isinstance(policy, Policy) and policy.name == name
    with pytest.raises(UnknownPolicyError, match="available: kube_default, netmarks"):
        get_policy("kube-default")
    with pytest.raises(ValueError, match="bad option"):
        get_policy("random", weight=3)


def test_pods_and_nodes_for_the_default_economy() -> None:
    pods = pods_for_economy(load_economy())
    assert len(pods) == 19 and pods[0].name == "water-0" and pods[0].workload == "water"
    assert pods[0].labels == {"app": "water"} and pods[0].cpu_m == 100
    nodes = uniform_nodes(3)
    assert [n.name for n in nodes] == ["node-1", "node-2", "node-3"]
    assert nodes[0].cpu_m == 4000 and nodes[0].memory == 8 * 2**30
    with pytest.raises(ValueError, match="at least one node"):
        uniform_nodes(0)


def test_same_seed_same_placement() -> None:
    pods, nodes = pods_for_economy(load_economy()), uniform_nodes(5)
    for name in available_policies():
        a = get_policy(name, seed=5).schedule(pods, nodes).assignments
        b = get_policy(name, seed=5).schedule(pods, nodes).assignments
        assert a == b, name
