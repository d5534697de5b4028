"""NetMARKS' Prometheus source against a real Prometheus scraping Istio-named counters."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from test_extender import wait_healthy

from schedulers import TrafficMatrix
from schedulers.extender import PrometheusTraffic
from schedulers.promtraffic import fetch_async

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

LABELS = ["reporter", "source_workload", "destination_workload"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, missing_tool: Callable[[str], NoReturn]
) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        missing_tool("the prometheus binary is not installed (tools/setup installs it)")
    tmp = tmp_path_factory.mktemp("prom")
    registry = CollectorRegistry()
    # L4: ztunnel-style counters, both reporters, bread<->flour 10x water<->pig.
    sent = Counter("istio_tcp_sent_bytes", "", LABELS, registry=registry)
    received = Counter("istio_tcp_received_bytes", "", LABELS, registry=registry)
    # L7 (sidecar) histograms for one pair: when present, NetMARKS' paper metrics win.
    req = Histogram("istio_request_bytes", "", LABELS, registry=registry, buckets=(1e9,))
    resp = Histogram("istio_response_bytes", "", LABELS, registry=registry, buckets=(1e9,))
    exporter_port = _free_port()
    server, _thread = start_http_server(exporter_port, addr="127.0.0.1", registry=registry)
    stop = threading.Event()

    def feed() -> None:
        while not stop.is_set():
            for reporter in ("source", "destination"):
                received.labels(reporter, "bread", "flour").inc(1000)
                sent.labels(reporter, "bread", "flour").inc(9000)
                received.labels(reporter, "pig", "water").inc(100)
                sent.labels(reporter, "pig", "water").inc(900)
                received.labels(reporter, "unknown", "bread").inc(50000)
                req.labels(reporter, "beer", "grain").observe(200)
                resp.labels(reporter, "beer", "grain").observe(1800)
            stop.wait(0.1)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    config = tmp / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n- job_name: mesh\n  static_configs:\n"
        f"  - targets: ['127.0.0.1:{exporter_port}']\n")
    port = _free_port()
    log = (tmp / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail((tmp / "prometheus.log").read_text()[-2000:])
                time.sleep(0.2)
        # increase() needs two samples of every series inside the window; the first
        # scrape comes a few seconds after /-/ready.
        while not TrafficMatrix.from_prometheus(url, 30, metrics="l4"):
            if time.monotonic() > deadline:
                pytest.fail("Prometheus never had two scrapes of the mesh counters")
            time.sleep(0.5)
        yield url
    finally:
        stop.set()
        proc.terminate()
        proc.wait(10)
        server.shutdown()
        log.close()


def test_l4_counters_give_f_of_a_b(prometheus: str) -> None:
    t = TrafficMatrix.from_prometheus(prometheus, window_s=30, metrics="l4")
    assert t.get("bread", "flour") > 0 and t.get("pig", "water") > 0
    # Both directions counted, each reporter once: 10 000 vs 1 000 bytes per tick.
    assert t.get("bread", "flour") / t.get("pig", "water") == pytest.approx(10, rel=0.15)
    assert "unknown" not in t.workloads  # traffic from outside the mesh is no pair


def test_l7_histograms_give_request_plus_response_bytes(prometheus: str) -> None:
    t = TrafficMatrix.from_prometheus(prometheus, window_s=30, metrics="l7")
    assert t.workloads == ["beer", "grain"]
    # 2000 B per tick against pig<->water's 1000 (each reporter counted once). The
    # absolute rate is bytes / window, and the series are younger than the window.
    ratio = t.get("beer", "grain") / TrafficMatrix.from_prometheus(
        prometheus, window_s=30, metrics="l4").get("pig", "water")
    assert ratio == pytest.approx(2, rel=0.15)


async def test_extender_source_prefers_l7_and_caches(prometheus: str) -> None:
    source = PrometheusTraffic(prometheus, window_s=30, ttl_s=60, timeout_s=1.0)
    try:
        t = await source.get()
        assert "(L7)" in t.source and t.between("grain", "beer") > 0
        assert await source.get() is t  # cached
        assert source.errors == 0
    finally:
        await source.close()
    async with aiohttp.ClientSession() as session:
        l4 = await fetch_async(session, prometheus, 30, metrics="l4")
        assert l4.between("flour", "bread") > 0 and not l4.between("beer", "grain")


async def test_extender_process_scores_from_prometheus(prometheus: str, tmp_path: Path) -> None:
    # The whole chain: Istio-named counters -> Prometheus -> extender process -> HTTP.
    pods = tmp_path / "pods.json"
    pods.write_text(json.dumps({"kind": "PodList", "items": [
        {"metadata": {"name": "flour-0", "namespace": "s", "labels": {"app": "flour"}},
         "spec": {"nodeName": "node-2"}, "status": {"phase": "Running"}},
        {"metadata": {"name": "water-0", "namespace": "s", "labels": {"app": "water"}},
         "spec": {"nodeName": "node-3"}, "status": {"phase": "Running"}}]}))
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "schedulers.cli", "netmarks-extender", "--prometheus", prometheus,
         "--metrics", "l4", "--window", "30", "--pods", str(pods), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    nodes = ["node-1", "node-2", "node-3"]

    async def scores(session: aiohttp.ClientSession, app: str) -> list[int]:
        pod = {"metadata": {"name": f"{app}-7d9f8c6b5-k2x8p", "labels": {"app": app}}}
        async with session.post(base + "/prioritize",
                                json={"Pod": pod, "Nodes": None, "NodeNames": nodes}) as r:
            assert r.status == 200
            return [s["Score"] for s in await r.json()]

    try:
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, base, proc)
            assert await scores(session, "bread") == [0, 10, 0]  # talks to flour
            assert await scores(session, "pig") == [0, 0, 10]    # talks to water
            assert await scores(session, "beer") == [0, 0, 0]    # no L4 data: no vote
    finally:
        proc.terminate()
        proc.wait(10)
