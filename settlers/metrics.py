"""The producer's own Prometheus metrics (``settlers_*``; the ``istio_*`` names belong
to the mesh, real or emulated, and are never exported here: only a producer started
with ``--mesh-metrics`` adds its own, marked ``settlers_exporter="producer"``, from
:mod:`settlers.peerbytes` to the same registry).

Counted in plain Python numbers and turned into metric families only when scraped:
prometheus_client's Counter/Histogram take a lock per update, four of them per order,
which profiling showed as the largest share of the service's own per-order CPU. A
service is one event loop in one thread, so unlocked counting is safe.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from settlers.wire import WireProtocol

__all__ = ["BUCKETS", "CONTENT_TYPE", "OUTCOMES", "ServiceMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
OUTCOMES = ("ok", "invalid", "upstream", "timeout", "error")
BUCKETS = (.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1.0, 2.5, 5.0, 10.0)


class ServiceMetrics(Collector):
    """Metrics of one service, in a registry of its own (tests run many in one process).

    settlers_requests_total{item,protocol,outcome}, settlers_request_seconds{item,protocol}
    (histogram), settlers_payload_bytes_total{item,protocol},
    settlers_upstream_errors_total{item,input}.
    """

    def __init__(self, item: str, protocol: WireProtocol) -> None:
        self.item = item
        self.protocol = protocol
        self.outcomes = dict.fromkeys(OUTCOMES, 0)
        self._buckets = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self._seconds_sum = 0.0
        self.payload_bytes = 0
        self.upstream_errors: dict[str, int] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def observe(self, outcome: str, seconds: float, payload_bytes: int = 0) -> None:
        self.outcomes[outcome] += 1
        self._buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
        self._seconds_sum += seconds
        self.payload_bytes += payload_bytes

    def upstream_error(self, input_item: str) -> None:
        self.upstream_errors[input_item] = self.upstream_errors.get(input_item, 0) + 1

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        labels = [self.item, self.protocol]
        requests = CounterMetricFamily("settlers_requests", "Orders answered, by outcome",
                                       labels=["item", "protocol", "outcome"])
        for outcome, n in self.outcomes.items():
            requests.add_metric([*labels, outcome], n)
        yield requests
        seconds = HistogramMetricFamily("settlers_request_seconds",
                                        "Time to answer an order, inputs included",
                                        labels=["item", "protocol"])
        cumulative, total = [], 0
        for bound, n in zip([*map(str, BUCKETS), "+Inf"], self._buckets, strict=True):
            total += n
            cumulative.append((bound, total))
        seconds.add_metric(labels, cumulative, self._seconds_sum)
        yield seconds
        payload = CounterMetricFamily("settlers_payload_bytes", "Payload bytes sent in answers",
                                      labels=["item", "protocol"])
        payload.add_metric(labels, self.payload_bytes)
        yield payload
        upstream = CounterMetricFamily("settlers_upstream_errors", "Failed calls to inputs",
                                       labels=["item", "input"])
        for input_item, n in sorted(self.upstream_errors.items()):
            upstream.add_metric([self.item, input_item], n)
        yield upstream
