"""Istio's standard metric and label names, as the testbed reads and emulates them.

Three parts speak Istio's telemetry: the emulated mesh exports it
(``harness.backends.emulated.telemetry``), NetMARKS reads it from Prometheus
(``schedulers.promtraffic``) and the kubernetes backend counts bytes from it
(``harness.backends.kubernetes.meshbytes``); without a mesh the producers can export
the L7 histograms themselves (``settlers.peerbytes``). They must agree on every name, so the
names live here, in the layer all of them stand on. They are Istio's, not ours:
https://istio.io/latest/docs/reference/config/metrics/.

Counter families are named without the ``_total`` suffix that the Prometheus
exposition adds (``prometheus_client`` wants them so); the series names PromQL sees
are the ``*_BYTES`` tuples below.
"""

from __future__ import annotations

__all__ = [
    "DESTINATION_WORKLOAD",
    "DESTINATION_WORKLOAD_NAMESPACE",
    "L4_BYTES",
    "L7_BYTES",
    "LABELS",
    "OUTSIDE_WORKLOADS",
    "REPORTER",
    "REPORTERS",
    "REQUEST_BYTES",
    "REQUEST_PROTOCOL",
    "RESPONSE_BYTES",
    "SOURCE_WORKLOAD",
    "SOURCE_WORKLOAD_NAMESPACE",
    "TCP_CONNECTIONS_CLOSED",
    "TCP_CONNECTIONS_OPENED",
    "TCP_RECEIVED_BYTES",
    "TCP_SENT_BYTES",
    "UNKNOWN",
]

# L7 (HTTP/gRPC through a sidecar or waypoint): histograms of message sizes.
REQUEST_BYTES = "istio_request_bytes"
RESPONSE_BYTES = "istio_response_bytes"
# L4 (any TCP, what ztunnel in an ambient mesh and our emulated mesh report):
# received = request direction (client -> server), sent = response direction.
TCP_RECEIVED_BYTES = "istio_tcp_received_bytes"
TCP_SENT_BYTES = "istio_tcp_sent_bytes"
TCP_CONNECTIONS_OPENED = "istio_tcp_connections_opened"
TCP_CONNECTIONS_CLOSED = "istio_tcp_connections_closed"

# The series that carry the bytes of one call, (request side, response side) per layer.
L7_BYTES = (f"{REQUEST_BYTES}_sum", f"{RESPONSE_BYTES}_sum")
L4_BYTES = (f"{TCP_RECEIVED_BYTES}_total", f"{TCP_SENT_BYTES}_total")

REPORTER = "reporter"
SOURCE_WORKLOAD = "source_workload"
SOURCE_WORKLOAD_NAMESPACE = "source_workload_namespace"
DESTINATION_WORKLOAD = "destination_workload"
DESTINATION_WORKLOAD_NAMESPACE = "destination_workload_namespace"
REQUEST_PROTOCOL = "request_protocol"
# Both ends of a call report it (sidecars and ztunnel alike).
REPORTERS = ("source", "destination")
# The labels of the TCP metrics, in the order the emulated mesh exports them.
LABELS = (
    REPORTER, SOURCE_WORKLOAD, SOURCE_WORKLOAD_NAMESPACE, "source_app",
    DESTINATION_WORKLOAD, DESTINATION_WORKLOAD_NAMESPACE, "destination_app",
    "destination_service", "destination_service_name", "destination_service_namespace",
    REQUEST_PROTOCOL,
)

# Istio's workload for a peer outside the mesh; "" where the label is missing.
UNKNOWN = "unknown"
OUTSIDE_WORKLOADS = frozenset({"", UNKNOWN})
