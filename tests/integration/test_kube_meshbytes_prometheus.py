"""The kubernetes backend's byte meter (`meshbytes.MeshMeter`) against a real Prometheus:
its PromQL runs, it waits for the scrape after the orders, and it counts what the
mesh's own counters say (the emulated cluster exports Istio's L4 metrics)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import NoReturn

import pytest

from harness.backends.emulated import ClusterSpec, EmulatedCluster
from harness.backends.emulated.prometheus import find_prometheus
from harness.backends.kubernetes.meshbytes import MeshMeter, Workloads, series_selector
from harness.measure import telemetry_delta
from results.links import LinkProfile
from settlers.client import open_client
from settlers.economy import load_economy
from settlers.promql import http_query, parse_vector

pytestmark = [pytest.mark.slow, pytest.mark.prometheus]

CHAIN = load_economy().subset(["flour"])
SPLIT = {"grain-0": "node-2", "flour-0": "node-1"}
SIZE = 64 * 1024


async def test_the_meter_counts_what_the_mesh_counted(
    missing_tool: Callable[[str], NoReturn],
) -> None:
    if find_prometheus() is None:
        missing_tool("Debian's `prometheus` binary is not installed (tools/setup installs it)")
    spec = ClusterSpec(nodes=2, link=LinkProfile(1.0, 1000.0), economy=CHAIN, protocol="http",
                       prometheus=True)
    async with await EmulatedCluster.start(spec, SPLIT) as cluster:
        assert cluster.prometheus_url is not None
        query = http_query(cluster.prometheus_url)
        meter = MeshMeter(query, "settlers", scrape_timeout_s=60)
        workloads = Workloads.from_layout(SPLIT)
        # As in a run, traffic before the measurement: Prometheus knows the scrape job
        # that reports the counters (a first scrape comes only after discovery).
        async with open_client(cluster.entry("flour"), "http") as client:
            await client.produce("flour", 1, 16)
        deadline = time.monotonic() + 60
        while not parse_vector(await asyncio.to_thread(query, series_selector("settlers"), None)):
            assert time.monotonic() < deadline, "Prometheus never scraped the mesh"
            await asyncio.sleep(0.2)
        before, direct_before = await asyncio.to_thread(meter.snapshot, workloads), \
            cluster.traffic_snapshot()
        async with open_client(cluster.entry("flour"), "http") as client:
            for _ in range(5):
                await client.produce("flour", 1, SIZE)
        direct = telemetry_delta(direct_before, cluster.traffic_snapshot())
        # Right after the orders: the meter waits for Prometheus' next scrape itself.
        after = await asyncio.to_thread(meter.snapshot, workloads)
    got = telemetry_delta(before, after)
    assert len(direct) == 1 and direct["bytes"].iloc[0] >= 5 * SIZE
    assert got.to_dict("records") == direct.to_dict("records")
