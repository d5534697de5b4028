"""The mesh relay on real loopback sockets, in-process, with tiny echo/blob servers."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from harness.backends.emulated.mesh import Endpoint, Mesh
from harness.backends.emulated.procs import free_port
from harness.backends.emulated.telemetry import MeshCollector
from harness.backends.emulated.timer import PreciseScheduler
from results.links import LinkProfile


async def _serve(handler: object) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)  # type: ignore[arg-type]
    return server, server.sockets[0].getsockname()[1]


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _blob(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers an 8-byte size with that many bytes."""
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while header := await reader.readexactly(8):
            writer.write(b"z" * int.from_bytes(header, "big"))
            await writer.drain()
    writer.close()


@pytest.fixture
async def mesh() -> AsyncIterator[tuple[Mesh, int]]:
    echo, echo_port = await _serve(_echo)
    blob, blob_port = await _serve(_blob)
    m = Mesh(LinkProfile(latency_ms=5.0, bandwidth_mbps=400.0), {
        "client-0": Endpoint("client-0", "client", 1),
        "echo-0": Endpoint("echo-0", "echo", echo_port),
        "blob-0": Endpoint("blob-0", "blob", blob_port),
    }, {"client-0": "node-1", "echo-0": "node-1", "blob-0": "node-1"})
    yield m, echo_port
    await m.close()
    echo.close()
    blob.close()


async def _rtt(port: int, n: int = 20) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        writer.write(b"ping-16-bytes-xx")
        await reader.readexactly(16)
        times.append(time.perf_counter() - t)
    writer.close()
    return statistics.median(times)


async def test_intra_node_relay_is_transparent_and_counted(mesh: tuple[Mesh, int]) -> None:
    m, _ = mesh
    port = await m.open_listener("echo", "client-0")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = bytes(range(256)) * 1000
    writer.write(payload)
    assert await reader.readexactly(len(payload)) == payload
    writer.close()
    key = ("client-0", "echo-0", "node-1", "node-1")
    assert m.counters.request_bytes[key] == len(payload)
    assert m.counters.response_bytes[key] == len(payload)
    assert m.counters.opened[("client-0", "echo-0")] == 1


async def test_crossing_nodes_adds_the_link_latency_and_relayout_removes_it(
        mesh: tuple[Mesh, int]) -> None:
    m, _ = mesh
    port = await m.open_listener("echo", "client-0")
    local = await _rtt(port)
    m.set_placement({"echo-0": "node-2"})
    split = await _rtt(port)
    m.set_placement({"echo-0": "node-1"})
    back = await _rtt(port)
    # Two crossings of 5 ms each; generous bounds because CI machines are busy.
    assert 0.009 < split - local < 0.016, (local, split)
    assert back < split - 0.005, (split, back)   # moving back removes the link again
    assert m.counters.request_bytes[("client-0", "echo-0", "node-1", "node-2")] == 20 * 16


async def test_bulk_transfer_is_shaped_to_the_bandwidth(mesh: tuple[Mesh, int]) -> None:
    m, _ = mesh
    m.set_placement({"blob-0": "node-3"})
    port = await m.open_listener("blob", "client-0")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    size = 10_000_000  # 10 MB at 400 Mbit/s = 0.2 s + 5 ms
    t = time.perf_counter()
    writer.write(size.to_bytes(8, "big"))
    assert len(await reader.readexactly(size)) == size
    elapsed = time.perf_counter() - t
    writer.close()
    # The lower bound is the model; the upper one allows for this one loop doing the
    # client, the mesh and the server at once (bench/link.py measures it properly).
    assert 0.2 < elapsed < 0.5, elapsed


async def test_flows_leaving_one_node_share_its_uplink(mesh: tuple[Mesh, int]) -> None:
    m, _ = mesh
    m.endpoints["client-1"] = Endpoint("client-1", "client", 1)
    m.set_placement({"blob-0": "node-2", "client-1": "node-3"})
    size = 2_500_000   # 2 x 2.5 MB through one 400 Mbit/s uplink: 0.1 s, not 0.05 s

    async def fetch(src_pod: str) -> None:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", await m.open_listener("blob", src_pod))
        writer.write(size.to_bytes(8, "big"))
        await reader.readexactly(size)
        writer.close()

    t = time.perf_counter()
    await asyncio.gather(fetch("client-0"), fetch("client-1"))
    elapsed = time.perf_counter() - t
    assert 0.1 < elapsed < 0.3, elapsed


async def test_ingress_never_crosses_a_link(mesh: tuple[Mesh, int]) -> None:
    m, _ = mesh
    m.set_placement({"echo-0": "node-2"})
    port = await m.open_listener("echo")
    assert await _rtt(port) < 0.005
    assert m.counters.request_bytes[("", "echo-0", "", "node-2")] == 20 * 16


async def test_dead_endpoint_resets_the_callers_connection(mesh: tuple[Mesh, int]) -> None:
    m, _ = mesh
    m.set_endpoint("echo-0", port=free_port(), ready=False)
    port = await m.open_listener("echo", "client-0")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"hello")
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(reader.readexactly(5), 5)
    writer.close()


async def test_round_robin_prefers_ready_endpoints() -> None:
    m = Mesh(LinkProfile(1, 100), {f"w-{i}": Endpoint(f"w-{i}", "w", 1) for i in range(3)},
             {f"w-{i}": "node-1" for i in range(3)})
    assert [m.pick("w").pod for _ in range(3)] == ["w-0", "w-1", "w-2"]  # type: ignore[union-attr]
    m.set_endpoint("w-1", ready=False)
    assert {m.pick("w").pod for _ in range(4)} == {"w-0", "w-2"}  # type: ignore[union-attr]
    assert m.pick("nothing") is None
    with pytest.raises(ValueError, match="unknown pod"):
        m.set_placement({"x-0": "node-1"})
    await m.close()


async def test_metrics_use_istio_names_and_labels(mesh: tuple[Mesh, int]) -> None:
    m, _ = mesh
    port = await m.open_listener("echo", "client-0")
    m.set_placement({"echo-0": "node-2"})
    await _rtt(port, n=3)
    registry = CollectorRegistry()
    registry.register(MeshCollector(m.counters, m.workload_of, lambda: m.placement))
    text = generate_latest(registry).decode()
    assert ('istio_tcp_received_bytes_total{destination_app="echo",'
            'destination_service="echo.settlers.svc.cluster.local"') in text
    for needle in ('reporter="destination"', 'reporter="source"', 'source_workload="client"',
                   'source_workload_namespace="settlers"', 'destination_workload="echo"',
                   'destination_workload_namespace="settlers"',
                   'istio_tcp_sent_bytes_total', 'istio_tcp_connections_opened_total',
                   'settlers_link_bytes_total{dst_node="node-2",src_node="node-1"} 48.0',
                   'settlers_link_bytes_total{dst_node="node-1",src_node="node-2"} 48.0',
                   'settlers_pod_info{namespace="settlers",node="node-2",pod="echo-0"'):
        assert needle in text, needle


async def test_precise_timer_fires_in_order_and_on_time() -> None:
    timers = PreciseScheduler(asyncio.get_running_loop())
    fired: list[tuple[int, float]] = []
    done = asyncio.Event()
    start = time.monotonic()
    for i, delay in enumerate([0.004, 0.002, 0.002, 0.006]):
        timers.call_at(start + delay, lambda i=i: fired.append((i, time.monotonic() - start)))
    timers.call_at(start + 0.007, done.set)
    await asyncio.wait_for(done.wait(), 2)
    timers.close()
    assert [i for i, _ in fired] == [1, 2, 0, 3]   # time order, FIFO on ties
    # Never more than the (capped, 0.5 ms) lead early.
    assert all(t >= d - 0.0005 for (_, t), d in zip(sorted(fired), [0.004, 0.002, 0.002, 0.006],
                                                    strict=True))


async def test_a_failing_timer_callback_does_not_stop_the_clock(
        caplog: pytest.LogCaptureFixture) -> None:
    # It used to: the exception escaped _fire before re-arming, and every later delivery
    # (all cross-node bytes) waited forever.
    timers = PreciseScheduler(asyncio.get_running_loop())
    done = asyncio.Event()
    start = time.monotonic()

    def boom() -> None:
        raise RuntimeError("transport went away")

    timers.call_at(start + 0.001, boom)
    timers.call_at(start + 0.001, lambda: None)
    await asyncio.sleep(0.01)
    timers.call_at(time.monotonic() + 0.002, done.set)    # armed after the failure
    await asyncio.wait_for(done.wait(), 2)
    timers.close()
    assert "transport went away" in caplog.text
