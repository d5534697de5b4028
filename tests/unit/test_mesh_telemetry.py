"""The mesh's counters as Prometheus series and as traffic rows."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from harness.backends.emulated.telemetry import MeshCollector, TrafficCounters

WORKLOADS = {"flour-0": "flour", "flour-1": "flour", "grain-0": "grain"}
PLACEMENT = {"flour-0": "node-1", "flour-1": "node-2", "grain-0": "node-2"}


def _counters() -> TrafficCounters:
    c = TrafficCounters.empty()
    c.request_bytes[("flour-0", "grain-0", "node-1", "node-2")] += 100
    c.response_bytes[("flour-0", "grain-0", "node-1", "node-2")] += 5000
    c.request_bytes[("flour-1", "grain-0", "node-2", "node-2")] += 50
    c.response_bytes[("flour-1", "grain-0", "node-2", "node-2")] += 700
    c.response_bytes[("", "flour-0", "", "node-1")] += 9000   # an order from outside
    c.opened[("flour-0", "grain-0")] += 1
    return c


def _samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(MeshCollector(_counters(), WORKLOADS.__getitem__, lambda: PLACEMENT))
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def _find(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> list[float]:
    return [v for (n, lab), v in samples.items()
            if n == name and all(dict(lab).get(k) == w for k, w in labels.items())]


def test_replicas_of_a_workload_merge_into_one_series_per_reporter() -> None:
    samples = _samples()
    sent = _find(samples, "istio_tcp_sent_bytes_total", source_workload="flour",
                 destination_workload="grain")
    assert sorted(sent) == [5700.0, 5700.0]   # reporter source + destination
    received = _find(samples, "istio_tcp_received_bytes_total", reporter="destination",
                     destination_service="grain.settlers.svc.cluster.local")
    assert received == [150.0]


def test_orders_from_outside_are_labelled_unknown() -> None:
    samples = _samples()
    assert _find(samples, "istio_tcp_sent_bytes_total", reporter="destination",
                 source_workload="unknown", source_workload_namespace="unknown",
                 destination_workload="flour") == [9000.0]


def test_link_counters_follow_the_direction_bytes_travel() -> None:
    samples = _samples()
    assert _find(samples, "settlers_link_bytes_total", src_node="node-1",
                 dst_node="node-2") == [100.0]
    assert _find(samples, "settlers_link_bytes_total", src_node="node-2",
                 dst_node="node-1") == [5000.0]
    assert not _find(samples, "settlers_link_bytes_total", src_node="node-2", dst_node="node-2")


def test_pod_info_reports_the_placement() -> None:
    samples = _samples()
    assert _find(samples, "settlers_pod_info", pod="flour-1", node="node-2",
                 workload="flour") == [1.0]


def test_records_keep_pods_and_nodes() -> None:
    rows = _counters().records(WORKLOADS)
    crossing = next(r for r in rows if r["source_pod"] == "flour-0" and r["src_node"])
    assert crossing == {"source_workload": "flour", "destination_workload": "grain",
                        "src_node": "node-1", "dst_node": "node-2", "source_pod": "flour-0",
                        "destination_pod": "grain-0", "request_bytes": 100,
                        "response_bytes": 5000, "bytes": 5100}
    ingress = next(r for r in rows if r["source_pod"] == "")
    assert ingress["source_workload"] == "unknown"
