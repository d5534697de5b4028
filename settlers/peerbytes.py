"""Per-peer byte counters under Istio's L7 metric names, for clusters without a mesh.

NetMARKS (``schedulers.promtraffic``) and the kubernetes backend's byte meter
(``harness.backends.kubernetes.meshbytes``) read the traffic between workloads from
Istio's ``istio_request_bytes`` / ``istio_response_bytes`` histograms. Where no mesh
runs, ``settlers serve --mesh-metrics`` makes each producer export the same
histograms itself, with the labels those readers use, plus ``settlers_exporter=
"producer"``: they are NOT Istio's, and a query can tell them apart.

Both ends of a call report it, as Istio's sidecars do:

- as a client (calling an input) with ``reporter="source"``: the request bytes it
  sent and the response bytes it received, per destination workload (which the
  server names in its answer: a Service may front several Deployments);
- as a server with ``reporter="destination"``: the request bytes received and the
  response bytes sent, per source workload (which the caller names in the
  ``x-settlers-workload`` header or gRPC metadata; ``unknown`` when it does not, as
  Istio reports callers outside the mesh).

What is counted: the message body as the application sends it (the HTTP body; the
serialized protobuf message for gRPC), plus the HTTP trace header, plus a fixed
:data:`HEADER_ESTIMATE` per message for the other headers. Istio's proxies count the
body plus the real size of the headers they see (their own ``x-request-id`` and
``x-envoy-*`` included), so the two differ by a roughly constant amount per call.
Calls that got no answer (connection refused, timeout) are not counted.

Counting is plain Python ints in dicts; the metric families are built at scrape
time (see :mod:`settlers.metrics` for why).
"""

from __future__ import annotations

import bisect
import functools
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from settlers import istio
from settlers.wire import WireProtocol

__all__ = [
    "BUCKETS",
    "EXPORTER",
    "EXPORTER_LABEL",
    "HEADER_ESTIMATE",
    "LABELS",
    "Peer",
    "PeerBytes",
    "caller_from_env",
]

# Bytes added to every counted message for its headers (names and values; the
# headers aiohttp or grpc sends for a produce call plus ours are 150-250 bytes).
HEADER_ESTIMATE = 200
# Envoy's default histogram buckets, which Istio's sidecars use for these metrics
# unless a pod sets sidecar.istio.io/statsHistogramBuckets.
BUCKETS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
           300000, 600000, 1800000, 3600000)
# The marker: Istio never sets this label, so these series are never mistaken for its.
EXPORTER_LABEL = "settlers_exporter"
EXPORTER = "producer"
LABELS = (istio.REPORTER, istio.SOURCE_WORKLOAD, istio.SOURCE_WORKLOAD_NAMESPACE,
          istio.DESTINATION_WORKLOAD, istio.DESTINATION_WORKLOAD_NAMESPACE,
          istio.REQUEST_PROTOCOL, EXPORTER_LABEL)

# Environment of a client that names itself (the chart sets both, from the Downward API).
WORKLOAD_ENV = "SETTLERS_WORKLOAD"
NAMESPACE_ENV = "SETTLERS_NAMESPACE"


@dataclass(frozen=True, slots=True)
class Peer:
    """A workload as Istio names it: the Deployment's (or Job's) name and namespace."""

    workload: str
    namespace: str

    @property
    def header(self) -> str:
        """``<namespace>/<workload>``: a namespace is a DNS label, so "/" is unambiguous."""
        return f"{self.namespace}/{self.workload}"

    @staticmethod
    @functools.lru_cache(maxsize=256)
    def parse(value: str | None) -> Peer:
        """From a header value; missing or malformed -> Istio's ``unknown``."""
        namespace, _, workload = (value or "").strip().rpartition("/")
        return Peer(workload or istio.UNKNOWN, namespace or istio.UNKNOWN)


def caller_from_env(env: Mapping[str, str] | None = None) -> Peer | None:
    """This process' workload from SETTLERS_WORKLOAD / SETTLERS_NAMESPACE, or None
    when the workload is not set (then a client names no one)."""
    env = os.environ if env is None else env
    workload = env.get(WORKLOAD_ENV, "").strip()
    if not workload:
        return None
    return Peer(workload, env.get(NAMESPACE_ENV, "").strip() or istio.UNKNOWN)


class _Histograms:
    """Request and response size histograms of one label set, as plain ints."""

    __slots__ = ("count", "request_buckets", "request_sum", "response_buckets", "response_sum")

    def __init__(self) -> None:
        self.count = 0
        self.request_sum = 0
        self.response_sum = 0
        self.request_buckets = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.response_buckets = [0] * (len(BUCKETS) + 1)

    def add(self, request: int, response: int) -> None:
        self.count += 1
        self.request_sum += request
        self.response_sum += response
        self.request_buckets[bisect.bisect_left(BUCKETS, request)] += 1
        self.response_buckets[bisect.bisect_left(BUCKETS, response)] += 1


def _cumulative(buckets: list[int]) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    total = 0
    for bound, n in zip([*map(str, BUCKETS), "+Inf"], buckets, strict=True):
        total += n
        out.append((bound, total))
    return out


class PeerBytes(Collector):
    """The counters of one producer (``me``), exported on its /metrics."""

    def __init__(self, me: Peer, protocol: WireProtocol) -> None:
        self.me = me
        self.protocol = protocol
        # (reporter, peer) -> sizes; reporter "source": peer is the destination.
        self._calls: dict[tuple[str, Peer], _Histograms] = {}

    def _add(self, reporter: str, peer: Peer, request: int, response: int) -> None:
        key = (reporter, peer)
        h = self._calls.get(key)
        if h is None:
            h = self._calls[key] = _Histograms()
        h.add(request + HEADER_ESTIMATE, response + HEADER_ESTIMATE)

    def called(self, destination: Peer, request: int, response: int) -> None:
        """A call this producer made (reporter="source"); sizes without headers."""
        self._add("source", destination, request, response)

    def served(self, source: Peer, request: int, response: int) -> None:
        """A call this producer answered (reporter="destination")."""
        self._add("destination", source, request, response)

    def collect(self) -> Iterator[Metric]:
        doc = ("{} sizes counted by the settlers producer itself (settlers serve "
               "--mesh-metrics; settlers_exporter=\"producer\"), not by Istio")
        request = HistogramMetricFamily(istio.REQUEST_BYTES, doc.format("Request"),
                                        labels=list(LABELS))
        response = HistogramMetricFamily(istio.RESPONSE_BYTES, doc.format("Response"),
                                         labels=list(LABELS))
        for (reporter, peer), h in sorted(self._calls.items(),
                                          key=lambda kv: (kv[0][0], kv[0][1].header)):
            src, dst = (self.me, peer) if reporter == "source" else (peer, self.me)
            labels = [reporter, src.workload, src.namespace, dst.workload, dst.namespace,
                      self.protocol, EXPORTER]
            request.add_metric(labels, _cumulative(h.request_buckets), h.request_sum)
            response.add_metric(labels, _cumulative(h.response_buckets), h.response_sum)
        yield request
        yield response
