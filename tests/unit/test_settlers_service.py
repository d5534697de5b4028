"""The producer service, run in-process on loopback: orders, traces, bad input, failures.

Fast checks of the service logic over real sockets; tests/integration repeats the
essentials against real ``settlers serve`` processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from settlers.client import OrderError, open_client
from settlers.serve import ServeConfig
from settlers.testing import serving
from settlers.wire import PROTOCOLS, WireProtocol

# Quantities other than 1 so that a wrong share (count * quantity) shows up.
ECONOMY = """
name: bakery
items:
  grain: {}
  water: {}
  flour: {inputs: {grain: 2}}
  bread: {inputs: {flour: 1, water: 3}}
"""


@pytest.fixture
def economy(tmp_path: Path) -> str:
    path = tmp_path / "bakery.yaml"
    path.write_text(ECONOMY)
    return str(path)


def _config(item: str, protocol: WireProtocol, economy: str, **kw: Any) -> ServeConfig:
    return ServeConfig(item=item, protocol=protocol, port=0, host="127.0.0.1",
                       economy=economy, pod_name=f"{item}-0", **kw)


@contextlib.asynccontextmanager
async def _bakery(protocol: WireProtocol, economy: str, **kw: Any) -> AsyncIterator[dict[str, str]]:
    async with contextlib.AsyncExitStack() as stack:
        addr: dict[str, str] = {}
        for item in ("grain", "water"):
            addr[item] = await stack.enter_async_context(
                serving(_config(item, protocol, economy, **kw)))
        addr["flour"] = await stack.enter_async_context(serving(_config(
            "flour", protocol, economy, inputs={"grain": addr["grain"]}, **kw)))
        addr["bread"] = await stack.enter_async_context(serving(_config(
            "bread", protocol, economy,
            inputs={"flour": addr["flour"], "water": addr["water"]}, **kw)))
        yield addr


@contextlib.asynccontextmanager
async def _black_hole() -> AsyncIterator[str]:
    """A TCP server that accepts connections and never answers: a hung input."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        for w in held:
            w.close()
        server.close()


def _closed_port() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("sequential", [False, True])
async def test_chain_shares_and_trace(economy: str, protocol: WireProtocol,
                                      sequential: bool) -> None:
    async with _bakery(protocol, economy, sequential=sequential) as addr, \
            open_client(addr["bread"], protocol) as client:
        result = await client.produce("bread", count=3, size=100)
    assert result.payload_bytes == 300
    assert result.item == "bread"
    hops = [(h.item, h.pod, h.caller, h.bytes) for h in result.trace]
    assert hops == [
        ("bread", "bread-0", "", 300),
        ("flour", "flour-0", "bread-0", 300),     # 3 x 1 flour
        ("grain", "grain-0", "flour-0", 600),     # 3 x 1 x 2 grain
        ("water", "water-0", "bread-0", 900),     # 3 x 3 water
    ]
    # A hop's time includes its inputs' time.
    assert result.trace[0].elapsed_ms >= result.trace[1].elapsed_ms >= 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_raw_item_all_paper_sizes(economy: str, protocol: WireProtocol) -> None:
    async with serving(_config("water", protocol, economy)) as addr, \
            open_client(addr, protocol) as client:
        for size in (16, 256, 4096, 65536, 1048576):
            result = await client.produce("water", size=size)
            assert result.payload_bytes == size
            assert [h.bytes for h in result.trace] == [size]
        # An empty item means "whatever you produce".
        assert (await client.produce("", size=16)).item == "water"


async def _post(addr: str, body: bytes) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, \
            session.post(f"http://{addr}/produce", data=body) as resp:
        body = await resp.read()
        return resp.status, (len(body) if resp.status == 200 else json.loads(body))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "the body is not valid JSON"),
        (b"[1, 2]", "the body must be a JSON object"),
        (b'{"size": 16}', "missing field 'count'"),
        (b'{"count": 1}', "missing field 'size'"),
        (b'{"count": "1", "size": 16}', "'count' must be an integer, got '1'"),
        (b'{"count": true, "size": 16}', "'count' must be an integer, got True"),
        (b'{"count": 1, "size": 1.5}', "'size' must be an integer, got 1.5"),
        (b'{"count": 1, "size": 16, "colour": 1}', "unknown field(s) ['colour']"),
        (b'{"count": 1, "size": 16, "item": 7}', "'item' must be a string"),
        (b'{"count": 1, "size": 16, "item": "bread"}', "produces 'water', not 'bread'"),
        (b'{"count": 0, "size": 16}', "count must be between 1 and 10000, got 0"),
        (b'{"count": 10001, "size": 16}', "count must be between 1 and 10000, got 10001"),
        (b'{"count": 1, "size": 0}', "size must be between 1 and 1048576 bytes"),
        (b'{"count": 1, "size": -5}', "size must be between 1 and 1048576 bytes"),
        (b'{"count": 1, "size": 1048577}', "the --max-size cap), got 1048577"),
        (b'{"count": 2, "size": 1048576}', "count * size = 2097152 bytes exceeds the cap"),
        # Far beyond memory: refused by arithmetic, never allocated.
        (b'{"count": 10000, "size": 1000000000000000}', "size must be between 1 and"),
    ],
)
async def test_http_bad_input_is_400_with_message(economy: str, body: bytes,
                                                  message: str) -> None:
    async with serving(_config("water", "http", economy, max_size=2**20)) as addr:
        status, reply = await _post(addr, body)
        assert status == 400
        assert message in reply["error"]
        # ... and the service keeps serving.
        assert (await _post(addr, b'{"count": 1, "size": 16}'))[0] == 200


async def test_http_oversized_body_and_wrong_method(economy: str) -> None:
    async with serving(_config("water", "http", economy)) as addr, \
            aiohttp.ClientSession() as session:
        async with session.post(f"http://{addr}/produce", data=b"x" * 200_000) as resp:
            assert resp.status == 413
            assert "too large" in (await resp.json())["error"]
        async with session.get(f"http://{addr}/produce") as resp:
            assert resp.status == 405
        async with session.get(f"http://{addr}/") as resp:
            assert "POST /produce" in await resp.text()


@pytest.mark.parametrize(
    ("count", "size", "item", "message"),
    [
        (0, 16, "water", "count must be between 1 and 10000, got 0"),
        (1, 0, "water", "size must be between 1"),
        (1, 2**20 + 1, "water", "got 1048577"),
        (3, 2**19, "water", "exceeds the cap"),
        (1, 16, "bread", "produces 'water', not 'bread'"),
    ],
)
async def test_grpc_bad_input_is_invalid_argument(economy: str, count: int, size: int,
                                                  item: str, message: str) -> None:
    async with serving(_config("water", "grpc", economy, max_size=2**20)) as addr:
        async with grpc.aio.insecure_channel(addr) as channel:
            from settlers.proto import settlers_pb2, settlers_pb2_grpc

            stub = settlers_pb2_grpc.ProducerStub(channel)  # type: ignore[no-untyped-call]
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Produce(settlers_pb2.ProduceRequest(item=item, count=count,
                                                               size=size))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert message in (err.value.details() or "")
        async with open_client(addr, "grpc") as client:
            with pytest.raises(OrderError) as order_err:
                await client.produce(item, count, size)
            assert order_err.value.kind == "invalid"
            assert (await client.produce("water", 1, 16)).payload_bytes == 16


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_dead_input_is_a_quick_upstream_error_naming_it(economy: str,
                                                              protocol: WireProtocol) -> None:
    dead = _closed_port()
    async with serving(_config("flour", protocol, economy, inputs={"grain": dead})) as addr, \
            open_client(addr, protocol) as client:
        start = time.monotonic()
        with pytest.raises(OrderError) as err:
            await client.produce("flour", 1, 16)
        assert time.monotonic() - start < 3
    assert err.value.kind == "upstream"
    assert f"input 'grain' at {dead}" in str(err.value)
    assert "connect" in str(err.value).lower()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_hung_input_times_out_naming_it(economy: str, protocol: WireProtocol) -> None:
    async with _black_hole() as hole, \
            serving(_config("flour", protocol, economy, inputs={"grain": hole},
                            timeout=0.5)) as addr, \
            open_client(addr, protocol) as client:
        start = time.monotonic()
        with pytest.raises(OrderError) as err:
            await client.produce("flour", 1, 16)
        assert 0.4 < time.monotonic() - start < 3
    assert err.value.kind == "timeout"
    assert f"input 'grain' at {hole}" in str(err.value)


async def test_http_status_codes_for_upstream_failures(economy: str) -> None:
    async with serving(_config("flour", "http", economy,
                               inputs={"grain": _closed_port()})) as addr:
        status, reply = await _post(addr, b'{"count": 1, "size": 16}')
        assert status == 502 and "input 'grain'" in reply["error"]
    async with _black_hole() as hole, \
            serving(_config("flour", "http", economy, inputs={"grain": hole},
                            timeout=0.3)) as addr:
        status, reply = await _post(addr, b'{"count": 1, "size": 16}')
        assert status == 504 and "input 'grain'" in reply["error"]


async def test_http_health_and_metrics(economy: str) -> None:
    async with serving(_config("water", "http", economy)) as addr, \
            open_client(addr, "http") as client, aiohttp.ClientSession() as session:
        await client.produce("water", 2, 100)
        with contextlib.suppress(OrderError):
            await client.produce("water", 0, 100)
        async with session.get(f"http://{addr}/healthz") as resp:
            assert resp.status == 200
        async with session.get(f"http://{addr}/metrics") as resp:
            text = await resp.text()
    assert 'settlers_requests_total{item="water",outcome="ok",protocol="http"} 1.0' in text
    assert 'settlers_requests_total{item="water",outcome="invalid",protocol="http"} 1.0' in text
    assert 'settlers_payload_bytes_total{item="water",protocol="http"} 200.0' in text
    assert "settlers_request_seconds_bucket" in text
    assert "istio_" not in text


async def test_grpc_health_service_and_side_metrics_port(economy: str) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        metrics_port = s.getsockname()[1]
    async with serving(_config("flour", "grpc", economy, inputs={"grain": _closed_port()},
                               metrics_port=metrics_port)) as addr:
        async with grpc.aio.insecure_channel(addr) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for service in ("", "settlers.v1.Producer"):
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
        async with open_client(addr, "grpc") as client:
            with pytest.raises(OrderError):
                await client.produce("flour", 1, 16)
        async with aiohttp.ClientSession() as session, \
                session.get(f"http://127.0.0.1:{metrics_port}/metrics") as resp:
            text = await resp.text()
    assert 'settlers_upstream_errors_total{input="grain",item="flour"} 1.0' in text
    assert 'outcome="upstream",protocol="grpc"} 1.0' in text


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_concurrent_orders_share_connections(economy: str, protocol: WireProtocol) -> None:
    async with _bakery(protocol, economy) as addr, \
            open_client(addr["bread"], protocol) as client:
        results = await asyncio.gather(*(client.produce("bread", 1, 4096) for _ in range(50)))
    assert all(r.payload_bytes == 4096 and len(r.trace) == 4 for r in results)


async def test_cpu_work_is_spent(tmp_path: Path) -> None:
    path = tmp_path / "work.yaml"
    path.write_text("items:\n  water: {work_ms: 30}\n")
    async with serving(_config("water", "http", str(path))) as addr, \
            open_client(addr, "http") as client:
        result = await client.produce("water", 1, 16)
    assert result.trace[0].elapsed_ms >= 30


async def test_cpu_work_is_per_unit_and_counted_in_cpu_time(tmp_path: Path) -> None:
    import time

    from settlers import producer

    path = tmp_path / "work.yaml"
    path.write_text("items:\n  water: {work_ms: 20}\n")
    async with serving(_config("water", "http", str(path))) as addr, \
            open_client(addr, "http") as client:
        result = await client.produce("water", 3, 16)
    assert result.trace[0].elapsed_ms >= 60
    # CPU time, not wall time: a thread that is not on the CPU does not count.
    start = time.thread_time()
    producer._busy(0.02)
    assert time.thread_time() - start >= 0.02


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_an_order_too_big_for_an_input_share_is_refused_up_front(
        economy: str, protocol: WireProtocol) -> None:
    # bread needs 3 water per unit: 4000 bread would ask water for 12000 units.
    async with _bakery(protocol, economy) as addr, \
            open_client(addr["bread"], protocol) as client:
        with pytest.raises(OrderError) as err:
            await client.produce("bread", 4000, 16)
        assert err.value.kind == "invalid"
        assert "input 'water' would be asked for 12000 units" in str(err.value)
        with pytest.raises(OrderError) as err:
            await client.produce("bread", 1, 2**23)  # 3 x 8 MiB of water > 16 MiB
        assert "input 'water' would be asked for 3 units of 8388608 bytes" in str(err.value)
        assert (await client.produce("bread", 3000, 16)).payload_bytes == 48000
