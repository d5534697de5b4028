"""The mesh's byte and connection counters, exported with Istio's metric names.

The relay hot path only adds to plain dicts keyed by (source pod, destination pod,
source node, destination node); the Prometheus families are built from them at
scrape time by a custom collector, so counting costs one dict update per chunk.

Names and labels follow Istio's standard TCP metrics as ztunnel (ambient) reports
them: ``istio_tcp_received_bytes_total`` counts request bytes (client -> server),
``istio_tcp_sent_bytes_total`` response bytes (server -> client). Like ztunnel we
report each connection from both ends, ``reporter="source"`` and
``reporter="destination"`` with equal values; filter on one of them in PromQL.
Traffic from outside the mesh (the order app) has ``source_workload="unknown"``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from settlers import istio

__all__ = ["NAMESPACE", "FlowKey", "MeshCollector", "TrafficCounters", "service_fqdn"]

NAMESPACE = "settlers"

# (source pod, destination pod, source node, destination node); the source pod and
# node are "" for traffic entering from outside the mesh.
FlowKey = tuple[str, str, str, str]

def service_fqdn(workload: str, namespace: str = NAMESPACE) -> str:
    return f"{workload}.{namespace}.svc.cluster.local"


@dataclass
class TrafficCounters:
    """Cumulative counts; the mesh mutates them, the collector and snapshots read them."""

    request_bytes: defaultdict[FlowKey, int]
    response_bytes: defaultdict[FlowKey, int]
    opened: defaultdict[tuple[str, str], int]   # (source pod, destination pod)
    closed: defaultdict[tuple[str, str], int]

    @classmethod
    def empty(cls) -> TrafficCounters:
        return cls(defaultdict(int), defaultdict(int), defaultdict(int), defaultdict(int))

    def records(self, workload_of: Mapping[str, str]) -> list[dict[str, object]]:
        """One row per flow key: pods, workloads, nodes, request/response/total bytes."""
        rows = []
        for key in sorted(set(self.request_bytes) | set(self.response_bytes)):
            src_pod, dst_pod, src_node, dst_node = key
            req, resp = self.request_bytes.get(key, 0), self.response_bytes.get(key, 0)
            rows.append({
                "source_workload": workload_of.get(src_pod, istio.UNKNOWN),
                "destination_workload": workload_of.get(dst_pod, istio.UNKNOWN),
                "src_node": src_node, "dst_node": dst_node,
                "source_pod": src_pod, "destination_pod": dst_pod,
                "request_bytes": req, "response_bytes": resp, "bytes": req + resp,
            })
        return rows


class MeshCollector(Collector):
    """Builds istio_* and settlers_link_* families from :class:`TrafficCounters`."""

    def __init__(self, counters: TrafficCounters, workload_of: Callable[[str], str],
                 placement: Callable[[], Mapping[str, str]]) -> None:
        self._c = counters
        self._workload_of = workload_of
        self._placement = placement

    def _istio_labels(self, reporter: str, src_pod: str, dst_pod: str) -> tuple[str, ...]:
        src = self._workload_of(src_pod) if src_pod else istio.UNKNOWN
        dst = self._workload_of(dst_pod)
        src_ns = NAMESPACE if src_pod else istio.UNKNOWN
        return (reporter, src, src_ns, src, dst, NAMESPACE, dst, service_fqdn(dst), dst,
                NAMESPACE, "tcp")

    def collect(self) -> Iterator[Metric]:
        fams = [
            (istio.TCP_RECEIVED_BYTES, "Bytes received by the destination (request direction).",
             _pod_pairs(self._c.request_bytes)),
            (istio.TCP_SENT_BYTES, "Bytes sent by the destination (response direction).",
             _pod_pairs(self._c.response_bytes)),
            (istio.TCP_CONNECTIONS_OPENED, "TCP connections opened.", dict(self._c.opened)),
            (istio.TCP_CONNECTIONS_CLOSED, "TCP connections closed.", dict(self._c.closed)),
        ]
        # Pod pairs first (cheap), then merge pods of one workload into one series.
        for name, doc, per_pods in fams:
            fam = CounterMetricFamily(name, doc, labels=list(istio.LABELS))
            merged: dict[tuple[str, ...], int] = defaultdict(int)
            for (src_pod, dst_pod), n in per_pods.items():
                for reporter in istio.REPORTERS:
                    merged[self._istio_labels(reporter, src_pod, dst_pod)] += n
            for labels, n in sorted(merged.items()):
                fam.add_metric(list(labels), n)
            yield fam

        link = CounterMetricFamily(
            "settlers_link_bytes",
            "Bytes carried by the emulated link from src_node to dst_node (inter-node only).",
            labels=["src_node", "dst_node"])
        per_link: dict[tuple[str, str], int] = defaultdict(int)
        for (_, _, a, b), n in self._c.request_bytes.items():
            if a and a != b:
                per_link[(a, b)] += n
        for (_, _, a, b), n in self._c.response_bytes.items():
            if a and a != b:
                per_link[(b, a)] += n
        for (a, b), n in sorted(per_link.items()):
            link.add_metric([a, b], n)
        yield link

        info = GaugeMetricFamily("settlers_pod_info", "1 for each pod, labelled with its node.",
                                 labels=["pod", "workload", "node", "namespace"])
        for pod, node in sorted(self._placement().items()):
            info.add_metric([pod, self._workload_of(pod), node, NAMESPACE], 1)
        yield info


def _pod_pairs(data: Mapping[FlowKey, int]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = defaultdict(int)
    for (src_pod, dst_pod, _, _), n in data.items():
        out[(src_pod, dst_pod)] += n
    return out
