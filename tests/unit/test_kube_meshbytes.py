"""Inter-node bytes on the kubernetes backend from Istio's counters (`meshbytes`),
without a cluster: pure steps on hand-made series, then the whole snapshot path on
recorded Prometheus answers (data/istio_bytes_sweep.json) served by a stand-in that
evaluates the meter's queries at a simulated "now" (no sleeping, no real clock)."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from harness.backends.kubernetes.meshbytes import (
    ORDER_WORKLOAD,
    CounterTracker,
    MeshMeter,
    Workloads,
    counter_increase,
    node_split,
    pair_bytes,
)
from harness.measure import telemetry_delta
from settlers.promql import PrometheusError, Series, parse_matrix

DATA = Path(__file__).parent / "data" / "istio_bytes_sweep.json"
JOB = "settlers-sweep-s1a2b3c4"


def test_increase_counts_resets_as_prometheus_does() -> None:
    samples = [(0.0, 10.0), (1.0, 15.0), (2.0, 3.0), (3.0, 7.0)]
    # Prometheus: last - first + the value before each drop = 7 - 10 + 15 = 12.
    assert counter_increase(samples) == 12
    assert counter_increase(samples, start=4.0) == 18  # from a known earlier value
    assert counter_increase(samples, start=0.0) == 22  # a series born in the window
    assert counter_increase([]) == 0 and counter_increase([(0.0, 5.0)]) == 0


def _series(values: list[tuple[float, float]], **labels: str) -> Series:
    return Series({"__name__": "istio_tcp_sent_bytes_total", **labels}, tuple(values))


def test_consecutive_snapshots_split_a_series_exactly() -> None:
    """Each snapshot counts up to the first sample at or after its cut; the pieces add
    up to the whole, whatever the cuts and resets."""
    values = [(float(t), float(v)) for t, v in
              enumerate([0, 5, 9, 9, 2, 4, 30, 31, 1, 1, 8, 12], start=100)]
    for cuts in ([100.5, 104.2, 111.0], [103.0, 107.9, 108.0, 111.0], [111.0]):
        tracker, total = CounterTracker(), 0.0
        for cut in cuts:
            visible = [p for p in values if p[0] <= cut + 0.5]
            for _, inc in tracker.advance([_series(visible)], cut):
                total += inc
        assert total == counter_increase(values, start=0.0), cuts


def test_a_series_seen_late_counts_from_its_value_before_the_previous_cut() -> None:
    tracker = CounterTracker()
    tracker.advance([], 10.0)
    late = _series([(5.0, 100.0), (9.0, 120.0), (12.0, 150.0)])
    born = _series([(11.0, 40.0), (12.0, 60.0)], pod="new")
    got = {s.labels.get("pod", ""): inc for s, inc in tracker.advance([late, born], 12.0)}
    assert got == {"": 30.0, "new": 60.0}


def test_workloads_follow_the_charts_deployment_names() -> None:
    placement = {"grain-0": "node-1", "grain-1": "node-2", "grain-2": "node-1",
                 "flour-0": "node-1", "bread-0": "node-2", "bread-1": "node-2"}
    w = Workloads.from_layout(placement, {JOB: "node-1"})
    assert w.resolve("grain-p0") == ("grain", "node-1")
    assert w.resolve("grain-p1") == ("grain", "node-2")
    assert w.resolve("bread") == ("bread", "node-2")  # all replicas on one node
    assert w.resolve(JOB) == (ORDER_WORKLOAD, "node-1")
    assert w.resolve("grain") == ("grain", "")  # not a Deployment of this layout


def test_one_layer_per_pair_and_the_larger_reporter() -> None:
    w = Workloads.from_layout({"a-0": "n1", "b-0": "n2", "c-0": "n1"})

    def inc(metric: str, reporter: str, src: str, dst: str, v: float) -> tuple[dict[str, str],
                                                                                float]:
        return ({"__name__": metric, "reporter": reporter, "source_workload": src,
                 "destination_workload": dst}, v)

    pairs = pair_bytes([
        # a -> b: L7 (request + response) and L4 both present: L7 only, larger reporter.
        inc("istio_request_bytes_sum", "source", "a", "b", 10),
        inc("istio_response_bytes_sum", "source", "a", "b", 90),
        inc("istio_request_bytes_sum", "destination", "a", "b", 10),
        inc("istio_response_bytes_sum", "destination", "a", "b", 95),
        inc("istio_tcp_received_bytes_total", "destination", "a", "b", 15),
        inc("istio_tcp_sent_bytes_total", "destination", "a", "b", 120),
        # a -> c: L4 only.
        inc("istio_tcp_received_bytes_total", "destination", "a", "c", 7),
        inc("istio_tcp_sent_bytes_total", "destination", "a", "c", 70),
        # From outside the mesh: left out, as the local backend leaves out its order app.
        inc("istio_tcp_sent_bytes_total", "destination", "unknown", "a", 1000),
        inc("istio_tcp_sent_bytes_total", "destination", "a", "", 1000),
    ], w)
    assert pairs == {("a", "b", "n1", "n2"): 105, ("a", "c", "n1", "n1"): 77}
    assert node_split(pairs) == (105, 77)


# -- the whole snapshot path on recorded answers ----------------------------------------

class RecordedPrometheus:
    """Answers the meter's queries from the recording, at a simulated time ``now``.

    Every round of the meter's target check (one ``timestamp(up)`` query) moves ``now``
    on by ``tick`` seconds: scrapes the meter waits for arrive as it polls.
    """

    def __init__(self, doc: dict[str, Any], now: float, tick: float = 1.0) -> None:
        self.series = parse_matrix(doc["series"])
        self.up = parse_matrix(doc["up"])
        self.stale: dict[str, float] = doc["stale"]
        self.now, self.tick, self.polls = now, tick, 0
        self.queries: list[str] = []

    def _live(self, s: Series) -> bool:
        gone = self.stale.get(s.labels.get("instance", ""))
        return (gone is None or gone > self.now) and any(
            self.now - 300 < ts <= self.now for ts, _ in s.samples)

    def _last(self, s: Series) -> tuple[float, float]:
        return [p for p in s.samples if p[0] <= self.now][-1]

    def __call__(self, promql: str, at: float | None) -> Any:
        assert at is None
        self.queries.append(promql)
        if promql == "time()":
            return {"status": "success", "data": {"resultType": "scalar",
                                                  "result": [self.now, str(self.now)]}}
        if m := re.fullmatch(r"(\{.*\})\[(\d+)ms\]", promql):
            assert 'destination_workload_namespace="bench"' in m[1]
            since = self.now - int(m[2]) / 1000
            found: list[dict[str, Any]] = [
                {"metric": dict(s.labels),
                 "values": [[ts, str(v)] for ts, v in s.samples if since < ts <= self.now]}
                for s in self.series]
            return {"status": "success", "data": {"resultType": "matrix",
                                                  "result": [r for r in found if r["values"]]}}
        if promql.startswith("group by (job, instance) ({"):
            targets = {(s.labels["job"], s.labels["instance"]) for s in self.series
                       if self._live(s)}
            return {"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {"job": j, "instance": i}, "value": [self.now, "1"]}
                for j, i in sorted(targets)]}}
        stamp = promql.startswith("(timestamp(up) and on (job)")
        assert stamp or promql.startswith("(up and on (job)"), promql
        assert 'up{namespace="bench"}' in promql
        if stamp:
            self.polls += 1
            self.now += self.tick
        # Targets of live Istio series in the namespace, or in it: here all carry
        # namespace="bench", so every live target.
        result = []
        for s in self.up:
            if not self._live(s):
                continue
            ts, v = self._last(s)
            result.append({"metric": {n: x for n, x in s.labels.items() if n != "__name__"},
                           "value": [self.now, str(ts if stamp else v)]})
        return {"status": "success", "data": {"resultType": "vector", "result": result}}


PLACEMENT = {"flour-0": "node-1", "bread-0": "node-2", "grain-0": "node-1", "grain-1": "node-2"}


def _meter(prom: RecordedPrometheus, **kw: Any) -> MeshMeter:
    return MeshMeter(prom, "bench", poll_s=0.0, clock=lambda: prom.now, **kw)


def test_a_sweeps_bytes_from_recorded_series() -> None:
    """Before the Job (cut 1000.2), after it (cut 1028.5): the Job's traffic ran from
    1006 to 1027. flour's sidecar restarted at 1012 (its counters reset; the 2 s it
    counted before restarting are lost, as for Prometheus); bread's proxy is scraped
    at 1026 and 1031, so the Job's last bytes are there only after waiting."""
    doc = json.loads(DATA.read_text())
    prom = RecordedPrometheus(doc, now=1000.2)
    meter = _meter(prom)
    workloads = Workloads.from_layout(PLACEMENT, {JOB: "node-1"})
    before = meter.snapshot(workloads)
    assert prom.now >= 1003  # waited for flour (1000), bread (1001), grain-p0 (1002) ...

    prom.now = 1028.5
    polls = prom.polls
    after = meter.snapshot(workloads)
    assert prom.polls - polls > 1 and prom.now >= 1031  # waited for bread's 1031 scrape

    delta = telemetry_delta(before, after)
    got = {(r.source_workload, r.destination_workload, r.src_node, r.dst_node): r.bytes
           for r in delta.itertuples()}
    assert got == {
        # L4, reported by flour only: (40 + 1000) B/s x 21 s, less 2 s lost at the restart.
        ("bread", "flour", "node-2", "node-1"): 1040 * 19,
        # L7 (30 + 600 B/s), not L4 (35 + 665) nor both; grain-p1's report (complete)
        # beats flour's (restarted).
        ("flour", "grain", "node-1", "node-2"): 630 * 21,
        ("flour", "grain", "node-1", "node-1"): 300 * 21,
        # The order Job, on the node its pod ran on; bread's report at 1031 is complete,
        # the Job's own proxy was last scraped at 1024.
        (ORDER_WORKLOAD, "bread", "node-1", "node-2"): 1120 * 21,
    }
    inter = delta[delta["src_node"] != delta["dst_node"]]["bytes"].sum()
    assert inter == 1040 * 19 + 630 * 21 + 1120 * 21


def test_without_a_scrape_past_the_cut_the_meter_warns_and_goes_on() -> None:
    doc = json.loads(DATA.read_text())
    prom = RecordedPrometheus(doc, now=1000.2, tick=0.0)  # time stands still: no scrape
    with pytest.warns(RuntimeWarning, match="has not scraped .*10.0.1.5:15020"):
        _meter(prom, scrape_timeout_s=0.0).snapshot(Workloads.from_layout(PLACEMENT))


def test_a_pod_that_is_no_scrape_target_yet_is_waited_for() -> None:
    doc = json.loads(DATA.read_text())
    prom = RecordedPrometheus(doc, now=1040.0, tick=0.0)
    with pytest.warns(RuntimeWarning, match="pod bread-new-x1 \\(not scraped yet\\)"):
        _meter(prom, scrape_timeout_s=0.0).snapshot(
            Workloads.from_layout(PLACEMENT), pods=["bread-7c4b9d6f5-k8m2n", "bread-new-x1"])


def test_waiting_stops_when_the_backend_is_cancelled() -> None:
    doc = json.loads(DATA.read_text())
    prom = RecordedPrometheus(doc, now=1000.2, tick=0.0)
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(PrometheusError, match="cancelled"):
        _meter(prom, cancelled=cancelled).snapshot(Workloads.from_layout(PLACEMENT))


def test_prometheus_errors_are_reported() -> None:
    def refuse(promql: str, at: float | None) -> Any:
        return {"status": "error", "errorType": "bad_data", "error": "parse error"}

    with pytest.raises(PrometheusError, match="parse error"):
        MeshMeter(refuse, "bench").snapshot(Workloads.from_layout(PLACEMENT))
