"""The mesh's verbs for moving pods and degrading links, without pod processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from harness.backends.emulated.links import LinkModel
from harness.backends.emulated.mesh import Endpoint, Mesh
from harness.backends.emulated.procs import port_in_use
from results.links import LinkProfile
from results.topology import resolve_topology

LINK = LinkProfile(latency_ms=1.0, bandwidth_mbps=100.0)


def test_degrade_changes_every_link_touching_the_node_and_only_those() -> None:
    model = LinkModel(LINK)
    model.degrade("node-2", latency_ms=30.0)
    assert model.pair_profile("node-1", "node-2") == LinkProfile(30.0, 100.0)
    assert model.pair_profile("node-2", "node-3") == LinkProfile(30.0, 100.0)
    assert model.pair_profile("node-1", "node-3") == LINK
    model.degrade("node-3", bandwidth_mbps=8.0)    # None keeps the latency it has
    assert model.pair_profile("node-2", "node-3") == LinkProfile(30.0, 8.0)
    model.degrade("node-2", latency_ms=2.0)         # the later change wins
    assert model.pair_profile("node-3", "node-2") == LinkProfile(2.0, 8.0)
    # the schedule follows: 1000 bytes at 8 Mbit/s = 1 ms, plus 2 ms
    assert model.schedule("node-2", "node-3", 1000, now=0.0) == pytest.approx(0.003)
    assert model.schedule("node-1", "node-4", 1000, now=0.0) == pytest.approx(
        1000 * LINK.seconds_per_byte + LINK.latency_s)


def test_degrade_on_a_topology_keeps_each_pairs_other_value() -> None:
    topo = resolve_topology("zones", nodes=3, link=LINK)
    model = LinkModel(LINK, topo.link_table())
    before = model.pair_profile("node-1", "node-2")
    model.degrade("node-1", latency_ms=50.0)
    assert model.pair_profile("node-1", "node-2") == LinkProfile(50.0, before.bandwidth_mbps)


def test_degrade_refuses_impossible_links() -> None:
    model = LinkModel(LINK)
    with pytest.raises(ValueError, match="latency"):
        model.degrade("node-1", latency_ms=-1.0)
    with pytest.raises(ValueError, match="bandwidth"):
        model.degrade("node-1", bandwidth_mbps=0.0)
    assert model.pair_profile("node-1", "node-2") == LINK


def _picked(mesh: Mesh, service: str, n: int = 4) -> set[str]:
    """The pods ``n`` connections to ``service`` would go to."""
    return {ep.pod for ep in (mesh.pick(service) for _ in range(n)) if ep is not None}


@pytest.fixture
async def mesh() -> AsyncIterator[Mesh]:
    m = Mesh(LINK, {"a-0": Endpoint("a-0", "a", 1), "b-0": Endpoint("b-0", "b", 2)},
             {"a-0": "node-1", "b-0": "node-1"})
    yield m
    await m.close()


async def test_a_new_pod_serves_only_once_told_and_a_retired_one_never(mesh: Mesh) -> None:
    egress = await mesh.add_pod("b-1", "b", "node-2", 3, ["a"])
    assert set(egress) == {"a"} and port_in_use(egress["a"])
    assert mesh.placement["b-1"] == "node-2"
    assert _picked(mesh, "b") == {"b-0"}    # b-1 not serving yet
    mesh.set_endpoint("b-1", serving=True)
    assert _picked(mesh, "b") == {"b-0", "b-1"}
    mesh.set_endpoint("b-0", serving=False)
    closed = await mesh.retire("b-0")
    assert _picked(mesh, "b") == {"b-1"}
    assert closed == []          # b-0 had no inputs
    with pytest.raises(ValueError, match="retired"):
        mesh.set_endpoint("b-0", serving=True)
    with pytest.raises(ValueError, match="never reused"):
        await mesh.add_pod("b-0", "b", "node-1", 4, [])
    assert mesh.workload_of("b-0") == "b"    # its counters keep their workload
    assert await mesh.retire("b-1") == [egress["a"]]
    assert not port_in_use(egress["a"])
    assert mesh.pick("b") is None            # nobody serves b: the caller is reset


async def test_open_flows_counts_connections_to_each_pod(mesh: Mesh) -> None:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    mesh.set_endpoint("b-0", port=server.sockets[0].getsockname()[1])
    listener = await mesh.open_listener("b", "a-0")
    try:
        assert mesh.open_flows() == {}
        _, writer = await asyncio.open_connection("127.0.0.1", listener)
        for _ in range(200):
            if mesh.open_flows().get("b-0", {}).get("open") == 1 \
                    and mesh.open_flows()["b-0"]["connecting"] == 0:
                break
            await asyncio.sleep(0.01)
        assert mesh.open_flows() == {"b-0": {"open": 1, "connecting": 0}}
        writer.close()
        for _ in range(200):
            if not mesh.open_flows():
                break
            await asyncio.sleep(0.01)
        assert mesh.open_flows() == {}
    finally:
        server.close()
        await server.wait_closed()


async def test_degrade_grows_the_buffers_for_a_longer_link(mesh: Mesh) -> None:
    mesh.placement["b-0"] = "node-2"
    low, high = mesh.low_water, mesh.high_water
    mesh.degrade("node-2", latency_ms=500.0, bandwidth_mbps=1000.0)
    assert mesh.link.pair_profile("node-1", "node-2") == LinkProfile(500.0, 1000.0)
    assert mesh.low_water > low and mesh.high_water > high
