"""`settlers serve --mesh-metrics` with real producer processes and a real Prometheus:
the counters match the bytes the orders moved (within the documented header
estimate), the kubernetes backend's byte meter counts exactly what the producers
counted, and NetMARKS' own PromQL (`schedulers.promtraffic`) sees the right pairs.

Three producers (grain, water -> pig) as a pinned layout would name them, and the
order "Job" as a client that names itself, all in namespace ``settlers``.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.backends.emulated.prometheus import PrometheusServer, find_prometheus
from harness.backends.kubernetes.meshbytes import (
    ORDER_WORKLOAD,
    MeshMeter,
    Workloads,
    series_selector,
)
from harness.measure import telemetry_delta
from schedulers.promtraffic import Interval, fetch_sync
from settlers import istio
from settlers.client import open_client
from settlers.peerbytes import EXPORTER, EXPORTER_LABEL, HEADER_ESTIMATE, Peer
from settlers.promql import http_query, parse_scalar, parse_vector
from settlers.testing import ServiceProcess, start_service
from settlers.wire import WireProtocol

pytestmark = [pytest.mark.slow, pytest.mark.prometheus]

NS = "settlers"
JOB = "settlers-sweep-s0f1e2d"
# pig's two replicas pinned on two nodes are Deployments pig-p0 and pig-p1; the
# process here is pig-p1 (node-2), so its calls to grain cross nodes.
PLACEMENT = {"grain-0": "node-1", "water-0": "node-2", "pig-0": "node-1", "pig-1": "node-2"}
WORKLOADS = {"grain": "grain", "water": "water", "pig": "pig-p1"}
ORDERS, COUNT, SIZE = 5, 4, 32 * 1024

Sums = dict[tuple[str, str, str, str], float]  # (name, reporter, src, dst) -> value


@pytest.fixture(scope="module", params=["http", "grpc"])
def producers(request: pytest.FixtureRequest) -> Iterator[dict[str, ServiceProcess]]:
    protocol: WireProtocol = request.param
    started: dict[str, ServiceProcess] = {}
    try:
        for item, inputs in (("grain", {}), ("water", {}),
                             ("pig", {"grain": "", "water": ""})):
            args = ["--mesh-metrics", f"--workload={WORKLOADS[item]}", f"--namespace={NS}",
                    *(["--metrics-port=0"] if protocol == "grpc" else [])]
            started[item] = start_service(
                item, protocol, args=args,
                inputs={k: started[k].address for k in inputs})
        yield started
    finally:
        for svc in started.values():
            svc.stop()


async def _scrape(services: dict[str, ServiceProcess]) -> Sums:
    out: Sums = defaultdict(float)
    async with aiohttp.ClientSession() as session:
        for svc in services.values():
            async with session.get(f"http://{svc.metrics_address}/metrics") as resp:
                text = await resp.text()
            for fam in text_string_to_metric_families(text):
                for s in fam.samples:
                    if s.name in istio.L7_BYTES:
                        assert s.labels[EXPORTER_LABEL] == EXPORTER
                        out[(s.name, s.labels[istio.REPORTER], s.labels[istio.SOURCE_WORKLOAD],
                             s.labels[istio.DESTINATION_WORKLOAD])] += s.value
    return dict(out)


def _delta(after: Sums, before: Sums) -> Sums:
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


def _pair(sums: Sums, reporter: str, src: str, dst: str) -> float:
    return sum(sums.get((name, reporter, src, dst), 0.0) for name in istio.L7_BYTES)


async def _orders(producers: dict[str, ServiceProcess], n: int, count: int, size: int) -> None:
    pig = producers["pig"]
    async with open_client(pig.address, pig.protocol, caller=Peer(JOB, NS)) as job:
        for _ in range(n):
            result = await job.produce("pig", count, size)
            assert result.payload_bytes == count * size


async def test_counters_match_the_bytes_sent(producers: dict[str, ServiceProcess]) -> None:
    before = await _scrape(producers)
    await _orders(producers, ORDERS, COUNT, SIZE)
    got = _delta(await _scrape(producers), before)
    payload = ORDERS * COUNT * SIZE  # each input is asked for count units (quantity 1)
    for dst in ("grain", "water"):
        pair = ("pig-p1", dst)
        # Both ends saw the same calls.
        for name in istio.L7_BYTES:
            assert got[(name, "source", *pair)] == got[(name, "destination", *pair)]
        response = got[(f"{istio.RESPONSE_BYTES}_sum", "source", *pair)]
        # The payloads, plus per answer the estimate and a one-hop trace (< 200 bytes).
        assert payload + ORDERS * HEADER_ESTIMATE < response \
            <= payload + ORDERS * 2 * HEADER_ESTIMATE
        request = got[(f"{istio.REQUEST_BYTES}_sum", "source", *pair)]
        assert ORDERS * HEADER_ESTIMATE < request <= ORDERS * (HEADER_ESTIMATE + 100)
    # The order Job has no /metrics: pig's server alone reports its calls.
    job = _pair(got, "destination", JOB, "pig-p1")
    assert payload + ORDERS * HEADER_ESTIMATE < job - ORDERS * HEADER_ESTIMATE
    assert _pair(got, "source", JOB, "pig-p1") == 0


@pytest.fixture(scope="module")
def prometheus(producers: dict[str, ServiceProcess], tmp_path_factory: pytest.TempPathFactory,
               missing_tool: Callable[[str], NoReturn]) -> Iterator[str]:
    binary = find_prometheus()
    if binary is None:
        missing_tool("Debian's `prometheus` binary is not installed (tools/setup installs it)")
    server = PrometheusServer(binary, Path(tmp_path_factory.mktemp("prom")),
                              [s.metrics_address for s in producers.values()])
    try:
        asyncio.run(server.wait_ready())
        yield server.url
    finally:
        server.stop()


def _wait(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"Prometheus: {what} within {timeout_s:g} s"
        time.sleep(0.2)


async def test_netmarks_and_the_byte_meter_read_them_from_prometheus(
        producers: dict[str, ServiceProcess], prometheus: str) -> None:
    query = http_query(prometheus)
    t0 = parse_scalar(await asyncio.to_thread(query, "time()", None), "time()")
    # A first small order creates the series; the meter's first snapshot is its baseline.
    await _orders(producers, 1, 1, 16)
    # (pig->grain, pig->water) x 2 reporters + job->pig x 1, x 2 metrics (request, response)
    series = (2 * 2 + 1) * 2

    def scraped() -> bool:
        return len(parse_vector(query(series_selector(NS), None))) == series

    await asyncio.to_thread(_wait, scraped, "the producers' series")
    meter = MeshMeter(query, NS, scrape_timeout_s=60)
    workloads = Workloads.from_layout(PLACEMENT, jobs={JOB: "node-1"})
    before = await asyncio.to_thread(meter.snapshot, workloads)
    direct_before = await _scrape(producers)
    await _orders(producers, ORDERS, COUNT, SIZE)
    direct = _delta(await _scrape(producers), direct_before)
    got = telemetry_delta(before, await asyncio.to_thread(meter.snapshot, workloads))
    # Exactly what the producers counted, per item and node pair, the larger reporter.
    assert {(r["source_workload"], r["destination_workload"], r["src_node"], r["dst_node"]):
            r["bytes"] for r in got.to_dict("records")} == {
        ("pig", "grain", "node-2", "node-1"): _pair(direct, "source", "pig-p1", "grain"),
        ("pig", "water", "node-2", "node-2"): _pair(direct, "source", "pig-p1", "water"),
        (ORDER_WORKLOAD, "pig", "node-1", "node-2"): _pair(direct, "destination", JOB, "pig-p1"),
    }

    # NetMARKS' PromQL, averaged since t0 (the chart's default), once Prometheus has a
    # few scrapes after the orders (its increase() extrapolates between samples).
    end = parse_scalar(query("time()", None), "time()")

    def settled() -> bool:
        stamps = parse_vector(query("timestamp(up)", None))
        return len(stamps) == 3 and min(v for _, v in stamps) > end + 3

    await asyncio.to_thread(_wait, settled, "three scrapes after the orders")
    now = parse_scalar(query("time()", None), "time()")
    matrix = await asyncio.to_thread(fetch_sync, prometheus, Interval(since=t0), now=now)
    assert "(L7)" in matrix.source
    seconds = now - t0
    assert sorted((a, b) for a in matrix.workloads for b in matrix.workloads
                  if matrix.get(a, b)) == [("pig-p1", "grain"), ("pig-p1", "water"),
                                           (JOB, "pig-p1")]
    for (src, dst), reporter in {("pig-p1", "grain"): "source", ("pig-p1", "water"): "source",
                                 (JOB, "pig-p1"): "destination"}.items():
        moved = _pair(direct, reporter, src, dst)
        # At least the orders' bytes (the warm-up's are in the first sample: increase()
        # starts there), and no more than them plus the extrapolation to the range's ends.
        assert 0.999 * moved <= matrix.get(src, dst) * seconds <= 1.5 * moved, (src, dst)
