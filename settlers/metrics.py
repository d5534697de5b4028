"""The producer's own Prometheus metrics (``settlers_*``; the ``istio_*`` names belong
to the mesh, real or emulated, and are never exported here)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "OUTCOMES", "ServiceMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
OUTCOMES = ("ok", "invalid", "upstream", "timeout", "error")
_BUCKETS = (.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10)


class ServiceMetrics:
    """Metrics of one service; a registry per instance so tests can run many."""

    def __init__(self, item: str, protocol: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        requests = Counter("settlers_requests", "Orders answered, by outcome",
                           ["item", "protocol", "outcome"], registry=self.registry)
        seconds = Histogram("settlers_request_seconds", "Time to answer an order, inputs "
                            "included", ["item", "protocol"], buckets=_BUCKETS,
                            registry=self.registry)
        self._payload = Counter("settlers_payload_bytes", "Payload bytes sent in answers",
                                ["item", "protocol"], registry=self.registry
                                ).labels(item, protocol)
        self._upstream = Counter("settlers_upstream_errors", "Failed calls to inputs",
                                 ["item", "input"], registry=self.registry)
        self._item = item
        # Children bound once: label lookups per request would cost more than the rest.
        self._outcomes = {o: requests.labels(item, protocol, o) for o in OUTCOMES}
        self._seconds = seconds.labels(item, protocol)

    def observe(self, outcome: str, seconds: float, payload_bytes: int = 0) -> None:
        self._outcomes[outcome].inc()
        self._seconds.observe(seconds)
        if payload_bytes:
            self._payload.inc(payload_bytes)

    def upstream_error(self, input_item: str) -> None:
        self._upstream.labels(self._item, input_item).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
