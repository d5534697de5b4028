"""Byte counters against the payloads sent: through a real Prometheus, and scraped directly."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import NoReturn

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.backends.emulated import ClusterSpec, EmulatedCluster
from harness.backends.emulated.prometheus import find_prometheus
from results.links import LinkProfile
from settlers import promql
from settlers.client import open_client
from settlers.economy import load_economy
from settlers.wire import WireProtocol

pytestmark = pytest.mark.slow

CHAIN = load_economy().subset(["flour"])
SPLIT = {"grain-0": "node-2", "flour-0": "node-1"}
SIZE = 256 * 1024
ORDERS = 12
PAYLOAD = SIZE * ORDERS
FLOUR_FROM_GRAIN = 'reporter="destination",source_workload="flour",destination_workload="grain"'


async def _send_orders(cluster: EmulatedCluster, protocol: WireProtocol) -> None:
    async with open_client(cluster.entry("flour"), protocol) as client:
        for _ in range(ORDERS):
            result = await client.produce("flour", 1, SIZE)
            assert result.payload_bytes == SIZE


def _promql(url: str, query: str) -> float:
    result = promql.parse_vector(promql.query_sync(url, query, timeout_s=5))
    return result[0][1] if result else 0.0


async def _eventually(read: Callable[[], float], at_least: float, timeout: float = 15) -> float:
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(read)
        if value >= at_least or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.5)


@pytest.mark.prometheus
async def test_prometheus_counts_the_bytes_that_crossed(
    missing_tool: Callable[[str], NoReturn],
) -> None:
    if find_prometheus() is None:
        missing_tool("Debian's `prometheus` binary is not installed (tools/setup installs it)")
    spec = ClusterSpec(nodes=2, link=LinkProfile(1.0, 1000.0), economy=CHAIN, protocol="http",
                       prometheus=True)
    async with await EmulatedCluster.start(spec, SPLIT) as cluster:
        assert cluster.prometheus_url is not None
        await _send_orders(cluster, "http")
        url = cluster.prometheus_url
        sent = await _eventually(lambda: _promql(
            url, f"sum(istio_tcp_sent_bytes_total{{{FLOUR_FROM_GRAIN}}})"), 0.95 * PAYLOAD)
        over_link = _promql(url, 'sum(settlers_link_bytes_total{src_node="node-2",'
                                 'dst_node="node-1"})')
        ingress = _promql(url, 'sum(istio_tcp_sent_bytes_total{reporter="destination",'
                               'source_workload="unknown",destination_workload="flour"})')
        series = _promql(url, 'count(istio_tcp_received_bytes_total{destination_service='
                              '"grain.settlers.svc.cluster.local",source_workload_namespace='
                              '"settlers",destination_workload_namespace="settlers"})')
    assert sent == pytest.approx(PAYLOAD, rel=0.05)
    assert over_link == pytest.approx(PAYLOAD, rel=0.05)
    assert ingress == pytest.approx(PAYLOAD, rel=0.05)
    assert series == 2   # reporter="source" and reporter="destination"


async def test_direct_scrape_fallback_counts_the_same() -> None:
    spec = ClusterSpec(nodes=2, link=LinkProfile(1.0, 1000.0), economy=CHAIN, protocol="grpc",
                       prometheus=False)
    async with await EmulatedCluster.start(spec, SPLIT) as cluster:
        assert cluster.prometheus_url is None
        await _send_orders(cluster, "grpc")
        with urllib.request.urlopen(cluster.metrics_url, timeout=5) as resp:
            text = resp.read().decode()
        snapshot = cluster.traffic_snapshot()
    values = {(s.name, s.labels.get("reporter"), s.labels.get("source_workload"),
               s.labels.get("destination_workload")): s.value
              for fam in text_string_to_metric_families(text) for s in fam.samples}
    assert values[("istio_tcp_sent_bytes_total", "destination", "flour", "grain")] == \
        pytest.approx(PAYLOAD, rel=0.05)
    row = snapshot[(snapshot.source_workload == "flour")
                   & (snapshot.destination_workload == "grain")]
    assert list(row[["src_node", "dst_node"]].itertuples(index=False, name=None)) == [
        ("node-1", "node-2")]
    assert int(row.response_bytes.iloc[0]) == pytest.approx(PAYLOAD, rel=0.05)
    assert int(row.bytes.iloc[0]) == int(row.request_bytes.iloc[0] + row.response_bytes.iloc[0])


async def test_without_the_binary_the_cluster_warns_and_runs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))
    spec = ClusterSpec(nodes=1, economy=load_economy().subset(["grain"]), prometheus=None)
    with pytest.warns(RuntimeWarning, match="no `prometheus` binary"):
        cluster = await EmulatedCluster.start(spec)
    async with cluster:
        assert cluster.prometheus_url is None
        with urllib.request.urlopen(cluster.metrics_url, timeout=5) as resp:
            assert b"settlers_pod_info" in resp.read()
