"""The NetMARKS extender says when it sees no traffic (and so never votes): GET /status,
a `netmarks-status` log line the kubernetes backend reads, the namespace scoping of
its PromQL, and the batch binders' liveness endpoint."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from threading import Thread
from urllib.parse import parse_qs, urlparse

import pytest
from aiohttp.test_utils import TestClient, TestServer

from harness.backends.kubernetes.extstatus import describe_status, last_status
from schedulers import TrafficMatrix
from schedulers.extender import Placements, PrometheusTraffic, StaticTraffic, make_app
from schedulers.extender.traffic_source import STATUS_MARK
from schedulers.health import Heartbeat, serve_health
from schedulers.promtraffic import Interval, queries


def _placements() -> Placements:
    placements = Placements("app")
    placements.set_pod("bench/bread-0", "node-1", "bread")
    placements.set_pod("bench/flour-0", "node-2", "flour")
    placements.set_pod("bench/water-0", "node-2", "water")
    return placements


async def test_status_says_traffic_seen_and_which_pods_have_traffic() -> None:
    traffic = TrafficMatrix({("bread", "flour"): 100.0}, source="test")
    async with TestClient(TestServer(make_app(StaticTraffic(traffic), _placements()))) as c:
        resp = await c.get("/status")
        assert resp.status == 200
        status = await resp.json()
    assert status["traffic_seen"] is True and status["warning"] is None
    assert status["series"] == 1 and status["workloads_with_traffic"] == 2
    assert (status["pods_known"], status["pods_with_traffic"]) == (3, 2)
    assert status["last_query"].endswith("Z")


async def test_status_is_loud_when_no_traffic_is_seen() -> None:
    empty = StaticTraffic(TrafficMatrix(source="nothing"))
    async with TestClient(TestServer(make_app(empty, _placements()))) as c:
        status = await (await c.get("/status")).json()
        # /healthz stays green: only /status tells.
        assert (await c.get("/healthz")).status == 200
    assert status["traffic_seen"] is False and status["pods_with_traffic"] == 0
    assert "NetMARKS does not vote" in status["warning"]
    assert "monitors.mesh" in status["warning"]


@pytest.fixture
def prometheus() -> Iterator[tuple[str, list[str], list[dict[str, object]]]]:
    """A stand-in Prometheus: answers every query with ``result`` (mutable), records them."""
    asked: list[str] = []
    result: list[dict[str, object]] = []

    class Prom(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlparse(self.path).query)
            asked.append(query["query"][0])
            now = float(query["time"][0])
            body = {"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": r["metric"], "value": [now, r["value"]]} for r in result]}}
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Prom)
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", asked, result
    server.shutdown()


async def test_prometheus_source_logs_when_traffic_appears_and_scopes_the_namespace(
        prometheus: tuple[str, list[str], list[dict[str, object]]],
        caplog: pytest.LogCaptureFixture) -> None:
    url, asked, result = prometheus
    source = PrometheusTraffic(url, interval=Interval(window_s=60), ttl_s=0,
                               metrics="l4", namespace="bench")
    caplog.set_level(logging.INFO, logger="schedulers.extender")
    assert not await source.get()
    assert all('destination_workload_namespace="bench"' in q for q in asked)
    result.append({"metric": {"source_workload": "flour", "destination_workload": "bread",
                              "reporter": "destination"}, "value": "600"})
    assert await source.get()
    await source.get()  # unchanged: no third line
    statuses = [r.getMessage() for r in caplog.records if STATUS_MARK in r.getMessage()]
    assert len(statuses) == 2
    first, then = (last_status(line) for line in statuses)
    assert first is not None and first["traffic_seen"] is False
    assert then is not None and then["traffic_seen"] is True and then["pairs"] == 1
    assert source.last_refresh is not None and source.info()["namespace"] == "bench"
    await source.close()


def test_queries_without_a_namespace_read_every_namespace() -> None:
    assert not any("namespace" in q for q in queries("l7", 60))
    (q, _) = queries("l4", 60, 'we"ird')
    assert 'destination_workload_namespace="we\\"ird"' in q


def test_the_report_warning_comes_from_the_last_status_line() -> None:
    log = "\n".join([
        "2026-12-02 12:00:00 WARNING schedulers.extender: netmarks-status "
        '{"traffic_seen": false, "pairs": 0, "source": "prometheus x (L7)", "errors": 0} '
        "(no traffic in Prometheus x: ...)",
        "2026-12-02 12:00:05 INFO schedulers.extender: netmarks-status "
        '{"traffic_seen": true, "pairs": 4, "source": "prometheus x (L7)", "errors": 0}',
    ])
    assert describe_status(last_status(log)) is None
    head = log.splitlines()[0]
    warning = describe_status(last_status(head))
    assert warning is not None and "saw no traffic (prometheus x (L7))" in warning
    silent = describe_status(last_status("no status lines at all"))
    assert silent is not None and "never asked to score" in silent


def test_health_endpoint_fails_once_the_loop_stops() -> None:
    now = [100.0]
    beat = Heartbeat(clock=lambda: now[0])
    server = serve_health(beat, 0, host="127.0.0.1", max_age_s=120)
    url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            assert reply.status == 200
        now[0] += 121  # no round started for longer than the limit
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(url, timeout=5)
        assert info.value.code == 503
        beat.beat()
        with urllib.request.urlopen(url, timeout=5) as reply:
            assert b"ok" in reply.read()
    finally:
        server.shutdown()
