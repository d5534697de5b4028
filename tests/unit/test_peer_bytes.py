"""`settlers serve --mesh-metrics`: per-peer bytes under Istio's L7 names, counted by
the producers themselves, and read back by NetMARKS (`schedulers.promtraffic`) and
the kubernetes backend's byte meter (`meshbytes`) as they read Istio's.

Services run in-process (`settlers.testing.serving`); their /metrics text is turned
into the answers Prometheus would give to each reader's PromQL and fed through the
readers' own parsing. tests/integration/test_peer_bytes_prometheus.py does the same
with real processes and a real Prometheus.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.backends.kubernetes.meshbytes import (
    ORDER_WORKLOAD,
    CounterTracker,
    Workloads,
    pair_bytes,
    series_selector,
)
from schedulers.promtraffic import Interval, fetch_sync
from settlers import istio, promql
from settlers.client import OrderError, open_client
from settlers.peerbytes import (
    EXPORTER,
    EXPORTER_LABEL,
    HEADER_ESTIMATE,
    LABELS,
    Peer,
    PeerBytes,
    caller_from_env,
)
from settlers.proto import settlers_pb2
from settlers.serve import ConfigError, ServeConfig, build_producer, serve
from settlers.wire import WireProtocol

NS = "bench"
JOB = "exp-sweep-s1a2b3c4"  # the order Job's name: its workload, as Istio names it
# flour's two replicas pinned on two nodes: Deployments flour-p0 and flour-p1; the
# one process here is flour-p1.
PLACEMENT = {"grain-0": "node-1", "flour-0": "node-1", "flour-1": "node-2"}
ORDERS, COUNT, SIZE = 3, 2, 1000

Sample = tuple[str, dict[str, str], float]  # (series name, labels, value)


# -- the counters alone -------------------------------------------------------------

def test_families_carry_istios_label_names_and_the_marker() -> None:
    peers = PeerBytes(Peer("flour-p1", NS), "grpc")
    peers.called(Peer("grain", NS), 10, 100)
    peers.served(Peer.parse(None), 20, 3_000_000)
    text = _render(peers)
    samples = _samples(text)
    sums = {(s[1][istio.REPORTER], s[1][istio.SOURCE_WORKLOAD], s[1][istio.DESTINATION_WORKLOAD]):
            v for s in samples if s[0] == "istio_request_bytes_sum" for v in [s[2]]}
    assert sums == {("source", "flour-p1", "grain"): 10 + HEADER_ESTIMATE,
                    ("destination", "unknown", "flour-p1"): 20 + HEADER_ESTIMATE}
    for name, labels, _ in samples:
        assert set(labels) - {"le"} == set(LABELS), name
        assert labels[EXPORTER_LABEL] == EXPORTER and labels[istio.REQUEST_PROTOCOL] == "grpc"
    caller = next(s[1] for s in samples if s[1][istio.SOURCE_WORKLOAD] == "unknown")
    assert caller[istio.SOURCE_WORKLOAD_NAMESPACE] == "unknown"
    assert caller[istio.DESTINATION_WORKLOAD_NAMESPACE] == NS
    # Envoy's buckets: 3 MB lands in the 3.6e6 bucket, not in +Inf alone.
    big = {s[1]["le"]: s[2] for s in samples if s[0] == "istio_response_bytes_bucket"
           and s[1][istio.REPORTER] == "destination"}
    assert big["1800000"] == 0 and big["3600000"] == 1 and big["+Inf"] == 1
    assert "not by Istio" in text


def test_peer_header_round_trip_and_unknowns() -> None:
    assert Peer.parse(Peer("coal-p0", NS).header) == Peer("coal-p0", NS)
    assert Peer.parse("coal") == Peer("coal", "unknown")
    assert Peer.parse("") == Peer.parse(None) == Peer("unknown", "unknown")
    assert caller_from_env({}) is None
    assert caller_from_env({"SETTLERS_WORKLOAD": JOB}) == Peer(JOB, "unknown")
    assert caller_from_env({"SETTLERS_WORKLOAD": JOB, "SETTLERS_NAMESPACE": NS}) == Peer(JOB, NS)


def test_the_producer_never_guesses_its_workload() -> None:
    with pytest.raises(ConfigError, match="--mesh-metrics needs --workload"):
        build_producer(ServeConfig("grain", mesh_metrics=True, namespace=NS))
    with pytest.raises(ConfigError, match="needs --namespace"):
        build_producer(ServeConfig("grain", mesh_metrics=True, workload="grain"))
    with pytest.raises(ConfigError, match="no '/'"):
        build_producer(ServeConfig("grain", mesh_metrics=True, workload="a/b", namespace=NS))
    assert build_producer(ServeConfig("grain")).peers is None


# -- a chain: order "Job" -> flour-p1 -> grain, both protocols -------------------------

@dataclass
class Chain:
    protocol: WireProtocol
    grain: str  # metrics URLs
    flour: str
    requests: int  # the bodies of flour's requests to grain, without headers


@contextlib.asynccontextmanager
async def _serving(item: str, protocol: WireProtocol, workload: str,
                   **kw: Any) -> AsyncIterator[tuple[str, str]]:
    """A service in this event loop with --mesh-metrics; (address, its /metrics URL)."""
    config = ServeConfig(item, protocol, port=0, host="127.0.0.1", pod_name=f"{item}-0",
                         mesh_metrics=True, workload=workload, namespace=NS,
                         metrics_port=0 if protocol == "grpc" else None, **kw)
    stop = asyncio.Event()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(config, ready=ready.set_result, stop=stop))
    try:
        await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # the start-up error
        line = ready.result()
        address = re.search(r" on (\S+) \(inputs", line)
        side = re.search(r", /metrics on (\S+)$", line)
        assert address, line
        yield address[1], f"http://{(side or address)[1]}/metrics"
    finally:
        stop.set()
        await task


@pytest.fixture(params=["http", "grpc"])
async def chain(request: pytest.FixtureRequest,
                monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Chain]:
    monkeypatch.delenv("SETTLERS_WORKLOAD", raising=False)
    protocol: WireProtocol = request.param
    async with _serving("grain", protocol, "grain") as (grain, grain_metrics), \
            _serving("flour", protocol, "flour-p1", inputs={"grain": grain}) as (
                flour, flour_metrics):
        async with open_client(flour, protocol, caller=Peer(JOB, NS)) as job:
            for _ in range(ORDERS):
                await job.produce("flour", COUNT, SIZE)
            # A refused order is an answer too: flour counts it.
            with pytest.raises(OrderError):
                await job.produce("flour", COUNT, 0)
        # A caller that does not name itself: Istio's "unknown", left out by both readers.
        async with open_client(flour, protocol) as anonymous:
            await anonymous.produce("flour", 1, 16)
        # flour asked grain for the inputs of every order it served (not the refused one).
        bodies = ORDERS * _body(protocol, COUNT, SIZE) + _body(protocol, 1, 16)
        yield Chain(protocol, grain_metrics, flour_metrics, bodies)


def _body(protocol: WireProtocol, count: int, size: int) -> int:
    order = {"item": "grain", "count": count, "size": size, "caller": "flour-0"}
    return (len(json.dumps(order).encode()) if protocol == "http"
            else settlers_pb2.ProduceRequest(**order).ByteSize())


async def _scrape(url: str) -> list[Sample]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200
        return _samples(await resp.text())


def _samples(text: str) -> list[Sample]:
    return [(s.name, dict(s.labels), s.value) for fam in text_string_to_metric_families(text)
            if fam.name.startswith("istio_") for s in fam.samples]


def _render(peers: PeerBytes) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(peers)
    return generate_latest(registry).decode()


def _sums(samples: list[Sample], name: str) -> dict[tuple[str, str, str], float]:
    out: dict[tuple[str, str, str], float] = defaultdict(float)
    for n, labels, v in samples:
        if n == name:
            out[(labels[istio.REPORTER], labels[istio.SOURCE_WORKLOAD],
                 labels[istio.DESTINATION_WORKLOAD])] += v
    return dict(out)


async def test_both_ends_count_each_call_within_the_header_estimate(chain: Chain) -> None:
    scraped = await _scrape(chain.grain) + await _scrape(chain.flour)
    req, resp = (_sums(scraped, "istio_request_bytes_sum"),
                 _sums(scraped, "istio_response_bytes_sum"))
    pair = ("flour-p1", "grain")
    # flour's client (reporter=source) and grain's server (destination) agree exactly.
    assert req[("source", *pair)] == req[("destination", *pair)]
    assert resp[("source", *pair)] == resp[("destination", *pair)]
    # Bodies exactly, plus the estimate; the refused order never reached grain.
    calls = ORDERS + 1
    assert req[("source", *pair)] == chain.requests + calls * HEADER_ESTIMATE
    payload = ORDERS * COUNT * SIZE + 16
    # The answers: payloads + the trace (one hop: < 200 bytes) + the header estimate.
    assert payload + calls * HEADER_ESTIMATE < resp[("source", *pair)] \
        <= payload + calls * 2 * HEADER_ESTIMATE
    # The order Job reaches flour only: only flour's server reports it (4 answers).
    job = [s for s in scraped if s[0] == "istio_request_bytes_count"
           and s[1][istio.SOURCE_WORKLOAD] == JOB]
    assert [(s[1][istio.REPORTER], s[1][istio.DESTINATION_WORKLOAD], s[2]) for s in job] == [
        ("destination", "flour-p1", ORDERS + 1)]
    assert ("destination", "unknown", "flour-p1") in req


# -- what Prometheus would answer each reader ------------------------------------------

T1 = 1_800_000_000.0


def _prometheus_sum_by(scraped: list[Sample], query: str) -> dict[str, Any]:
    """`sum by (source_workload, destination_workload, reporter) (increase(m[W]))` over
    counters born inside the window (so the increase is their value)."""
    m = re.fullmatch(r"sum by \(([\w, ]+)\) \(increase\((\w+)\[\d+ms\]\)\)", query)
    assert m, query
    by = [b.strip() for b in m[1].split(",")]
    total: dict[tuple[str, ...], float] = defaultdict(float)
    for name, labels, v in scraped:
        if name == m[2]:
            total[tuple(labels[b] for b in by)] += v
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": dict(zip(by, key, strict=True)), "value": [T1, str(v)]}
        for key, v in total.items()]}}


def _prometheus_matrix(selector: str, targets: Mapping[str, str]) -> dict[str, Any]:
    """The raw series of `series_selector(NS)` over a range: each counter 0 at T1-10,
    its value at T1, with the target labels Prometheus adds (job, instance)."""
    names = re.search(r'__name__=~"([^"]+)"', selector)
    assert names and f'{istio.DESTINATION_WORKLOAD_NAMESPACE}="{NS}"' in selector
    wanted = set(names[1].split("|"))
    result = [
        {"metric": {"__name__": name, **labels, "job": "producers", "instance": instance},
         "values": [[T1 - 10, "0"], [T1, str(v)]]}
        for instance, text in targets.items()
        for name, labels, v in _samples(text)
        if name in wanted and labels[istio.DESTINATION_WORKLOAD_NAMESPACE] == NS]
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


async def test_netmarks_reads_the_producers_counters_as_istios(
        chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    scraped = await _scrape(chain.grain) + await _scrape(chain.flour)
    asked: list[str] = []

    def query(url: str, q: str, at: float | None, *, timeout_s: float) -> Any:
        asked.append(q)
        return _prometheus_sum_by(scraped, q)

    monkeypatch.setattr(promql, "query_sync", query)
    window = 60.0
    matrix = fetch_sync("http://prometheus.test", Interval(window_s=window), now=T1)
    # L7 found, so the L4 queries were never needed.
    assert all("istio_request_bytes_sum" in q or "istio_response_bytes_sum" in q for q in asked)
    req = _sums(scraped, "istio_request_bytes_sum")
    resp = _sums(scraped, "istio_response_bytes_sum")
    pair = ("flour-p1", "grain")
    expected = {pair: (req[("source", *pair)] + resp[("source", *pair)]) / window,
                (JOB, "flour-p1"): (req[("destination", JOB, "flour-p1")]
                                    + resp[("destination", JOB, "flour-p1")]) / window}
    # The marker label is summed away; the unknown caller is left out, as with Istio.
    got = {(a, b): matrix.get(a, b) for a in matrix.workloads for b in matrix.workloads
           if matrix.get(a, b)}
    assert got == pytest.approx(expected)
    assert expected[pair] > COUNT * SIZE * ORDERS / window


async def test_the_byte_meter_reads_them_per_item_and_node(chain: Chain) -> None:
    async with aiohttp.ClientSession() as session:
        texts = {}
        for instance, url in (("grain:9090", chain.grain), ("flour:9090", chain.flour)):
            async with session.get(url) as resp:
                texts[instance] = await resp.text()
    selector = f"{series_selector(NS)}[15000ms]"
    series = promql.parse_matrix(_prometheus_matrix(selector, texts))
    assert {s.labels[EXPORTER_LABEL] for s in series} == {EXPORTER}
    tracker = CounterTracker()
    pairs = pair_bytes(((s.labels, inc) for s, inc in tracker.advance(series, T1)),
                       Workloads.from_layout(PLACEMENT, jobs={JOB: "node-1"}))
    scraped = _samples(texts["grain:9090"]) + _samples(texts["flour:9090"])
    req = _sums(scraped, "istio_request_bytes_sum")
    resp = _sums(scraped, "istio_response_bytes_sum")
    assert pairs == {
        ("flour", "grain", "node-2", "node-1"):
            req[("source", "flour-p1", "grain")] + resp[("source", "flour-p1", "grain")],
        (ORDER_WORKLOAD, "flour", "node-1", "node-2"):
            req[("destination", JOB, "flour-p1")] + resp[("destination", JOB, "flour-p1")],
    }
