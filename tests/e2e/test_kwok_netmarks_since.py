"""NetMARKS on kwok after a long kube_default phase: the average since the warm-up's
start (the default) still co-locates chatty pods; a sliding window that the idle phase
outlasted sees nothing, so the extender abstains and its scheduler spreads like the
default one.

Real pieces: kube-apiserver + kwok nodes, two real kube-schedulers, two NetMARKS
extender processes, a real Prometheus scraping Istio-named L4 counters. The window is
a few seconds here instead of the chart's old 300 s so the test stays short; the
story is the same as a 300 s window against a 20-minute kube_default phase.
"""

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
from typing import Any, NoReturn

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from harness.backends.k8s import ExtraScheduler, KwokCluster, extender_stanza
from harness.backends.k8s.process import stop_process, wait_http_ok
from harness.backends.k8s.workloads import (
    DeploymentSpec,
    create_deployments,
    delete_namespace,
    wait_bound,
)
from schedulers import TrafficMatrix
from schedulers.promtraffic import Interval, iso_time

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.prometheus, pytest.mark.timeout(600)]

# Heavy traffic inside each pair, none across: NetMARKS must co-locate each pair.
PAIRS = [("alpha", "beta"), ("gamma", "delta")]
WINDOW_S = 3.0  # the sliding window under test, much shorter than the idle phase
LABELS = ["reporter", "source_workload", "destination_workload"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _until(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


class Mesh:
    """Istio-named L4 counters for PAIRS, scraped every second by a real Prometheus."""

    def __init__(self, url: str, sent: Any, received: Any) -> None:
        self.url = url
        self._sent, self._received = sent, received
        self._stop = threading.Event()
        self._feeder: threading.Thread | None = None

    def start_orders(self) -> None:
        def feed() -> None:
            while not self._stop.is_set():
                for a, b in PAIRS:
                    for reporter in ("source", "destination"):
                        self._received.labels(reporter, a, b).inc(10_000)
                        self._sent.labels(reporter, a, b).inc(90_000)
                self._stop.wait(0.1)

        self._feeder = threading.Thread(target=feed, daemon=True)
        self._feeder.start()

    def stop_orders(self) -> None:
        self._stop.set()
        if self._feeder is not None:
            self._feeder.join()

    def traffic(self, interval: Interval | float) -> TrafficMatrix:
        return TrafficMatrix.from_prometheus(self.url, interval, metrics="l4")


@pytest.fixture
def mesh(tmp_path: Path, missing_tool: Callable[[str], NoReturn]) -> Iterator[Mesh]:
    binary = shutil.which("prometheus")
    if binary is None:
        missing_tool("the prometheus binary is not installed (tools/setup installs it)")
    registry = CollectorRegistry()
    sent = Counter("istio_tcp_sent_bytes", "", LABELS, registry=registry)
    received = Counter("istio_tcp_received_bytes", "", LABELS, registry=registry)
    exporter = _free_port()
    server, _ = start_http_server(exporter, addr="127.0.0.1", registry=registry)
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\nscrape_configs:\n- job_name: mesh\n"
        f"  static_configs:\n  - targets: ['127.0.0.1:{exporter}']\n")
    port = _free_port()
    with (tmp_path / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [binary, f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    m = Mesh(f"http://127.0.0.1:{port}", sent, received)
    try:
        wait_http_ok(f"{m.url}/-/ready", proc, tmp_path / "prometheus.log", 60)
        yield m
    finally:
        m.stop_orders()
        stop_process(proc)
        server.shutdown()


def _extender(cluster: KwokCluster, prometheus: str, log: Path,
              *interval: str) -> tuple[str, subprocess.Popen[bytes]]:
    port = _free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from schedulers.cli import main; main()",
             "netmarks-extender", "--prometheus", prometheus, "--metrics", "l4", *interval,
             "--cache-ttl", "0.5", "--port", str(port), "--kubeconfig", str(cluster.kubeconfig)],
            stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_http_ok(f"{url}/healthz", proc, log, 60)
    return url, proc


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read()) if url.endswith("/traffic") else r.read().decode()


def _metric(extender: str, name: str, match: str = "") -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in _get(f"{extender}/metrics").splitlines()
               if line.startswith(name) and match in line)


def _bound_pods(cluster: KwokCluster) -> int:
    pods = cluster.core_v1().list_pod_for_all_namespaces().items
    return sum(1 for p in pods if p.spec.node_name and not p.metadata.deletion_timestamp)


def _place_pairs(cluster: KwokCluster, namespace: str, scheduler: str,
                 extender: str | None = None) -> dict[str, str]:
    """Each pair's first workload, then (once the extender sees it bound) its partner."""
    create_deployments(cluster, namespace, [DeploymentSpec(a, cpu_m=200) for a, _ in PAIRS],
                       scheduler)
    wait_bound(cluster, namespace, len(PAIRS))
    if extender is not None:
        bound = _bound_pods(cluster)
        _until("the extender's pod watch to see the bound pods",
               lambda: _metric(extender, "netmarks_extender_known_pods") >= bound)
    create_deployments(cluster, namespace, [DeploymentSpec(b, cpu_m=200) for _, b in PAIRS],
                       scheduler)
    pods = wait_bound(cluster, namespace, 2 * len(PAIRS))
    return {p.metadata.labels["app"]: p.spec.node_name for p in pods}


def _namespace(cluster: KwokCluster, name: str) -> str:
    from kubernetes import client

    cluster.core_v1().create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=name)))
    return name


def test_since_t0_colocates_after_a_long_default_phase_a_short_window_abstains(
        kwok_cluster: KwokCluster, mesh: Mesh, tmp_path: Path) -> None:
    cluster = kwok_cluster
    suffix = str(int(time.time() * 1000) % 10**8)
    # 1. Warm-up: orders flow from t0 until Prometheus has seen every pair.
    t0 = time.time()
    mesh.start_orders()
    _until("Prometheus to see the warm-up traffic",
           lambda: len(mesh.traffic(Interval(since=t0))) == len(PAIRS))
    mesh.stop_orders()
    quiet_from = time.time()
    # 2. A kube_default phase, no orders: redeploy until the short sliding window is
    # empty (at least WINDOW_S without traffic).
    rounds = 0

    def window_empty() -> bool:
        nonlocal rounds
        ns = _namespace(cluster, f"default-{suffix}-{rounds}")
        try:
            _place_pairs(cluster, ns, "default-scheduler")
        finally:
            delete_namespace(cluster, ns)
        rounds += 1
        return time.time() - quiet_from > WINDOW_S and not mesh.traffic(WINDOW_S)

    _until("the sliding window to forget the warm-up", window_empty, timeout=180)
    assert rounds >= 1 and time.time() - quiet_from > WINDOW_S
    assert len(mesh.traffic(Interval(since=t0))) == len(PAIRS)

    procs: list[subprocess.Popen[bytes]] = []
    try:
        # 3. The same NetMARKS over a sliding window: no data, all scores 0, no vote.
        window_url, proc = _extender(cluster, mesh.url, tmp_path / "window.log",
                                     "--window", str(WINDOW_S))
        procs.append(proc)
        info = _get(f"{window_url}/traffic")
        assert info["interval"]["mode"] == "window" and info["last"]["pairs"] == 0, info
        ns = _namespace(cluster, f"window-{suffix}")
        stanza = extender_stanza(window_url + "/", weight=5)
        with ExtraScheduler.start(cluster, "netmarks-window", extenders=[stanza]):
            calls = _metric(window_url, "netmarks_extender_requests_total", "prioritize")
            where = _place_pairs(cluster, ns, "netmarks-window", window_url)
            assert _metric(window_url, "netmarks_extender_requests_total",
                           "prioritize") > calls, "kube-scheduler never asked the extender"
        delete_namespace(cluster, ns)
        # Without a vote it spreads like the default scheduler (LeastAllocated: a
        # partner always prefers an empty node over its first's).
        assert all(where[a] != where[b] for a, b in PAIRS), where

        # 4. NetMARKS with the average since the warm-up's start (as the harness runs it).
        since_url, proc = _extender(cluster, mesh.url, tmp_path / "since.log",
                                    "--since", iso_time(t0))
        procs.append(proc)
        info = _get(f"{since_url}/traffic")
        assert info["interval"]["mode"] == "since", info
        assert info["interval"]["since"] == pytest.approx(t0, abs=1e-3)
        assert info["last"]["pairs"] == len(PAIRS), info
        ns = _namespace(cluster, f"since-{suffix}")
        stanza = extender_stanza(since_url + "/", weight=5)
        with ExtraScheduler.start(cluster, "netmarks-since", extenders=[stanza]):
            where = _place_pairs(cluster, ns, "netmarks-since", since_url)
        delete_namespace(cluster, ns)
        for a, b in PAIRS:
            assert where[a] == where[b], f"{b} not placed with its traffic partner {a}: {where}"
        log = (tmp_path / "since.log").read_text()
        assert f"average since {iso_time(t0)} (--since)" in log
    finally:
        for proc in procs:
            stop_process(proc)
