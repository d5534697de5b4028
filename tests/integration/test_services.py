"""Real `settlers serve` processes on loopback: a three-level chain on both protocols.

grain -> flour -> bread <- water, from the shipped settlers2 economy. Every process
is stopped when its fixture ends, whatever the test did.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import aiohttp
import pytest

from settlers.client import OrderError, open_client
from settlers.testing import ServiceProcess, run_chain
from settlers.trace import decode_trace
from settlers.wire import PROTOCOLS, WireProtocol

pytestmark = pytest.mark.slow

SIZES = [16, 256, 4096, 65536, 1048576]
CHAIN = ["bread", "flour", "grain", "water"]


@pytest.fixture(scope="module")
def http_chain() -> Iterator[dict[str, ServiceProcess]]:
    with run_chain("settlers2", "http", roots=["bread"]) as services:
        yield services


@pytest.fixture(scope="module")
def grpc_chain() -> Iterator[dict[str, ServiceProcess]]:
    with run_chain("settlers2", "grpc", roots=["bread"]) as services:
        yield services


@pytest.fixture(params=PROTOCOLS)
def chain(request: pytest.FixtureRequest) -> dict[str, ServiceProcess]:
    services: dict[str, ServiceProcess] = request.getfixturevalue(f"{request.param}_chain")
    return services


def _protocol(services: dict[str, ServiceProcess]) -> WireProtocol:
    return services["bread"].protocol  # type: ignore[return-value]


@pytest.mark.parametrize("count", [1, 3])
async def test_orders_at_all_paper_sizes(chain: dict[str, ServiceProcess], count: int) -> None:
    protocol = _protocol(chain)
    async with open_client(chain["bread"].address, protocol) as client:
        for size in SIZES:
            result = await client.produce("bread", count=count, size=size)
            assert result.payload_bytes == count * size
            assert [(h.item, h.pod, h.caller) for h in result.trace] == [
                ("bread", "bread-0", ""),
                ("flour", "flour-0", "bread-0"),
                ("grain", "grain-0", "flour-0"),
                ("water", "water-0", "bread-0"),
            ]
            assert all(h.bytes == count * size for h in result.trace)
            assert result.latency_s > 0


async def test_every_service_answers_directly(chain: dict[str, ServiceProcess]) -> None:
    protocol = _protocol(chain)
    for item in CHAIN:
        async with open_client(chain[item].address, protocol) as client:
            result = await client.produce(item, 2, 100)
        assert result.trace[0].pod == f"{item}-0"
        assert result.payload_bytes == 200


async def test_http_wire_format(http_chain: dict[str, ServiceProcess]) -> None:
    chain = http_chain
    url = f"http://{chain['bread'].address}/produce"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"count": 2, "size": 4096}) as resp:
            assert resp.status == 200
            assert len(await resp.read()) == 8192
            trace = decode_trace(resp.headers["X-Settlers-Trace"])
        assert [h.item for h in trace] == CHAIN
        async with session.post(url, data=b'{"count": 1, "size": 99999999999}') as resp:
            assert resp.status == 400
            assert "size must be between 1 and 16777216" in (await resp.json())["error"]
        async with session.get(f"http://{chain['bread'].address}/healthz") as resp:
            assert resp.status == 200


async def test_bad_input_is_refused_and_service_keeps_serving(
        chain: dict[str, ServiceProcess]) -> None:
    protocol = _protocol(chain)
    async with open_client(chain["bread"].address, protocol) as client:
        for count, size, item in [(0, 16, "bread"), (10_001, 16, "bread"),
                                  (1, 0, "bread"), (1, 2**40, "bread"),
                                  (10_000, 2**20, "bread"), (1, 16, "flour")]:
            with pytest.raises(OrderError) as err:
                await client.produce(item, count, size)
            assert err.value.kind == "invalid", str(err.value)
        assert (await client.produce("bread", 1, 16)).payload_bytes == 16
    assert all(s.alive() for s in chain.values())


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_killed_input_gives_a_quick_upstream_error(protocol: WireProtocol) -> None:
    with run_chain("settlers2", protocol, roots=["bread"]) as services:
        grain = services["grain"]
        async with open_client(services["bread"].address, protocol, timeout=20) as client:
            assert (await client.produce("bread", 1, 65536)).payload_bytes == 65536
            # Orders in flight while the input dies: every one must end promptly.
            load = [asyncio.create_task(client.produce("bread", 1, 65536)) for _ in range(20)]
            grain.kill()
            start = time.monotonic()
            outcomes = await asyncio.gather(*load, return_exceptions=True)
            assert time.monotonic() - start < 5
            assert all(isinstance(o, OrderError) or o.payload_bytes == 65536  # type: ignore[union-attr]
                       for o in outcomes)
            start = time.monotonic()
            with pytest.raises(OrderError) as err:
                await client.produce("bread", 1, 16)
            assert time.monotonic() - start < 3
        assert err.value.kind == "upstream"
        message = str(err.value)
        assert "input 'flour'" in message
        assert f"input 'grain' at {grain.address}" in message
        # The rest of the chain survives and answers for what it can still make.
        async with open_client(services["water"].address, protocol) as client:
            assert (await client.produce("water", 1, 16)).payload_bytes == 16
        assert services["bread"].alive() and services["flour"].alive()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_configured_by_environment_and_sigterm_exits_cleanly(protocol: WireProtocol) -> None:
    # The Kubernetes way: no flags, only SETTLERS_* variables; the pod name is $HOSTNAME.
    env = {**os.environ, "SETTLERS_ITEM": "water", "SETTLERS_PROTOCOL": protocol,
           "SETTLERS_PORT": "0", "SETTLERS_HOST": "127.0.0.1", "HOSTNAME": "water-7d9f-x2",
           "SETTLERS_POD_NAME": ""}
    proc = subprocess.Popen([sys.executable, "-m", "settlers", "serve"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert "water (pod water-7d9f-x2) ready" in line, line
        address = line.split(" on ")[1].split()[0]

        async def order() -> str:
            async with open_client(address, protocol) as client:
                return (await client.produce("water", 1, 16)).trace[0].pod

        assert asyncio.run(order()) == "water-7d9f-x2"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_metrics_count_orders(http_chain: dict[str, ServiceProcess]) -> None:
    # (gRPC services serve /metrics only with --metrics-port; see the unit tests.)
    chain = http_chain

    async def scrape() -> str:
        async with aiohttp.ClientSession() as session, \
                session.get(f"http://{chain['grain'].address}/metrics") as resp:
            return await resp.text()

    text = asyncio.run(scrape())
    ok = [line for line in text.splitlines()
          if line.startswith("settlers_requests_total") and 'outcome="ok"' in line]
    assert ok and float(ok[0].split()[-1]) >= 1
    assert "istio_" not in text


def test_run_chain_stops_its_processes_even_when_the_body_fails() -> None:
    class Boom(Exception):
        pass

    started: dict[str, ServiceProcess] = {}
    with pytest.raises(Boom), run_chain("settlers2", "http", roots=["water"]) as services:
        started.update(services)
        assert services["water"].alive()
        raise Boom
    assert list(started) == ["water"]
    assert not started["water"].alive()
    assert started["water"].process.returncode == 0  # stopped by SIGTERM, exited cleanly


def test_a_service_that_cannot_start_is_reported_with_its_error() -> None:
    with pytest.raises(RuntimeError, match="--item 'cake' is not in economy"), \
            run_chain("settlers2", "http", roots=["water"], args=["--item", "cake"]):
        pass
