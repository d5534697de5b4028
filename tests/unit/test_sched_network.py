"""The network seam: what network-aware policies are told about delays between nodes."""

from __future__ import annotations

import math
from typing import Any

import pytest

from results.topology import resolve_topology
from schedulers.network import Link, NodeNetwork
from schedulers.registry import get_policy


def test_a_node_is_local_to_itself_and_flat_networks_treat_pairs_alike() -> None:
    flat = NodeNetwork.flat(2.0, 1e6)
    assert flat.delay_ms("a", "a") == 0.0 and flat.bandwidth("a", "a") is None
    assert flat.delay_ms("a", "b") == flat.delay_ms("x", "y") == 2.0
    assert flat.bandwidth("b", "a") == 1e6
    assert flat.is_flat


def test_a_built_network_knows_only_its_nodes() -> None:
    net = NodeNetwork.build(["a", "b"], lambda s, d: Link(1.0 if s < d else 3.0), "test")
    assert net.delay_ms("a", "b") == 1.0 and net.delay_ms("b", "a") == 3.0
    assert not net.is_flat
    with pytest.raises(KeyError, match="'a' and 'zz' \\(test\\)"):
        net.delay_ms("a", "zz")


@pytest.mark.parametrize(("delay", "bandwidth"), [(-1.0, None), (math.nan, None), (1.0, 0.0)])
def test_links_reject_impossible_values(delay: float, bandwidth: float | None) -> None:
    with pytest.raises(ValueError, match="link"):
        Link(delay, bandwidth)


def test_a_topology_gives_each_pair_its_class_link() -> None:
    topo = resolve_topology("zones", nodes=6, link="edge")
    net = topo.network()
    names = topo.node_names
    assert net.source == "topology zones"
    for a in names:
        for b in names:
            link = topo.link(a, b)
            if link is None:
                assert net.delay_ms(a, b) == 0.0
                continue
            assert net.delay_ms(a, b) == link.latency_ms
            want = None if math.isinf(link.bandwidth_mbps) else link.bandwidth_mbps * 1e6 / 8
            assert net.bandwidth(a, b) == want
    assert not net.is_flat  # zones: same-zone and cross-zone links differ
    assert resolve_topology(None, nodes=3, link="edge").network().is_flat


def test_get_policy_hands_network_and_economy_only_to_policies_that_say_so(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from schedulers import registry
    from schedulers.spec import PolicySpec

    seen: dict[str, Any] = {}

    def new(**kw: Any) -> object:
        seen.update(kw)
        return object()

    spec = PolicySpec("probe", "x", uses_network=True, uses_economy=False)
    monkeypatch.setattr(registry, "_entry", lambda name: registry._Entry(spec, new))
    net = NodeNetwork.flat(1.0)
    get_policy("probe", network=net, economy="ECON", seed=3)  # type: ignore[arg-type]
    assert seen == {"network": net, "seed": 3}
