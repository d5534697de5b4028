"""The in-cluster data plane of the kubernetes backend: the producers pinned to one
layout at a time, orders sent by the chart's order-app Job, bytes from Istio's counters.

It needs nodes that run containers; on kwok the backend measures on the emulated data
plane instead (`emulated`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.backends.base import TELEMETRY_KEYS, WireProtocol
from harness.backends.kubernetes.cluster import ClusterError
from harness.backends.kubernetes.orders import parse_job_log, wait_job
from harness.backends.kubernetes.values import pins_by_item
from harness.backends.kwok.workloads import bound_placement

if TYPE_CHECKING:
    from harness.backends.kubernetes.backend import KubernetesBackend

__all__ = ["SWEEP_LABEL", "KubernetesDataPlane", "istio_bytes"]

# Marks the order Jobs the backend creates (deleted at cleanup).
SWEEP_LABEL = "settlers-testbed.io/sweep"


@dataclass
class KubernetesDataPlane:
    """The producers pinned to one layout at a time; orders run in-cluster as a Job."""

    backend: KubernetesBackend
    protocol: WireProtocol
    placement: dict[str, str] = field(default_factory=dict)
    node_names: list[str] = field(init=False)
    prometheus_url: str | None = field(init=False)

    def __post_init__(self) -> None:
        self.node_names = self.backend.node_names
        self.prometheus_url = self.backend.options.prometheus_query_url

    async def relayout(self, placement: Mapping[str, str]) -> None:
        """Pin every producer to its node and wait until all are Ready there."""
        await asyncio.to_thread(self._relayout, dict(placement))

    def _relayout(self, placement: dict[str, str]) -> None:
        b = self.backend
        with b._busy:
            b.install(b._phase(protocol=self.protocol, placement=placement))
            expected = sum(item.replicas for item in b.economy)
            result = b.cluster.wait_placed(expected, b.options.timeout_s, ready=True)
        got = pins_by_item(bound_placement(result.pods))
        want = pins_by_item(placement)
        wrong = sorted(i for i in want if sorted(want[i]) != sorted(got.get(i, [])))
        if wrong:
            raise ClusterError(f"pods of {', '.join(wrong)} are not on the pinned nodes yet")
        self.placement = placement

    def entry(self, item: str) -> str:
        """Where in-cluster clients reach ``item`` (the order Job uses these names)."""
        ns = self.backend.options.namespace
        return f"{item}.{ns}.svc:{self.backend.options.port}"

    async def run_sweep(
        self,
        targets: Mapping[str, str],
        protocol: WireProtocol,
        items: list[str],
        sizes: list[int],
        *,
        count: int = 1,
        repeat: int = 10,
        warmup: int = 2,
        progress: bool = True,
        timeout: float = 30.0,
    ) -> pd.DataFrame:
        """`order_app.run_sweep`, run in the cluster as the chart's order-app Job.

        ``targets`` is accepted for signature compatibility; the Job reaches every
        item by its Service name. Returns the same one-row-per-order table.
        """
        return await asyncio.to_thread(self._sweep, protocol, items, sizes, count, repeat,
                                       warmup, timeout)

    def _sweep(self, protocol: WireProtocol, items: list[str], sizes: list[int], count: int,
               repeat: int, warmup: int, timeout: float) -> pd.DataFrame:
        b = self.backend
        job = self.order_job(protocol, items, sizes, count=count, repeat=repeat, warmup=warmup,
                             timeout=timeout)
        name = job["metadata"]["name"]
        batch, core, ns = b.cluster.batch, b.cluster.core, b.options.namespace
        with b._busy:
            if b._closed:
                raise ClusterError("the kubernetes backend is closed")
            batch.create_namespaced_job(ns, job)
        try:
            per_order = (repeat + warmup) * len(items) * len(sizes)
            log = wait_job(batch, core, ns, name, cancelled=b.cluster.cancelled,
                           timeout_s=b.options.timeout_s + per_order * timeout)
        finally:
            with contextlib.suppress(Exception):
                batch.delete_namespaced_job(name, ns, propagation_policy="Background")
        return parse_job_log(log)

    def order_job(self, protocol: WireProtocol, items: list[str], sizes: list[int], *,
                  count: int = 1, repeat: int = 10, warmup: int = 2,
                  timeout: float = 30.0) -> dict[str, Any]:
        """The chart's order-app Job for this sweep, under a fresh name (not created)."""
        b = self.backend
        values = b._phase(protocol=protocol, placement=self.placement).render()
        values["orderApp"] = {"enabled": True, "items": list(items),
                              "sizes": [int(s) for s in sizes], "count": count,
                              "repeat": repeat, "warmup": warmup,
                              "extraArgs": ["--timeout", str(timeout)]}
        (job,) = b.helm.template(
            [values], release=b.options.release, namespace=b.options.namespace,
            chart=b.options.chart, kube_version=b.kube_version,
            value_files=b.options.values_files,
            extra=["--show-only", "templates/order-app-job.yaml"])
        name = f"{b.options.release}-sweep-{uuid.uuid4().hex[:8]}"
        job["metadata"]["name"] = name
        job["metadata"]["labels"][SWEEP_LABEL] = name
        return dict(job)

    def traffic_snapshot(self) -> pd.DataFrame:
        """Cumulative Istio bytes per workload pair from Prometheus (empty without it).

        Istio labels carry workloads, not nodes: a workload's node is taken from the
        current layout when all its pods share one node, else "".
        """
        url = self.prometheus_url
        if not url:
            return pd.DataFrame(columns=[*TELEMETRY_KEYS, "bytes"])
        frame = istio_bytes(url, self.backend.options.namespace)
        node_of = {item: nodes[0] for item, nodes in pins_by_item(self.placement).items()
                   if len(set(nodes)) == 1}
        frame["src_node"] = frame["source_workload"].map(node_of).fillna("")
        frame["dst_node"] = frame["destination_workload"].map(node_of).fillna("")
        return frame[[*TELEMETRY_KEYS, "bytes"]]

    async def stop(self) -> None:
        return None


# Istio's byte counters: HTTP/gRPC (sidecars) and L4 (ambient ztunnel, plain TCP).
_ISTIO_BYTES = ("istio_request_bytes_sum", "istio_response_bytes_sum",
                "istio_tcp_sent_bytes_total", "istio_tcp_received_bytes_total")


def istio_bytes(prometheus_url: str, namespace: str, timeout_s: float = 10.0) -> pd.DataFrame:
    """Bytes per (source_workload, destination_workload) in ``namespace``, summed over
    Istio's HTTP and TCP byte counters as reported by the destination."""
    rows: dict[tuple[str, str], float] = {}
    for metric in _ISTIO_BYTES:
        query = (f'sum by (source_workload, destination_workload) ({metric}'
                 f'{{reporter="destination",destination_workload_namespace="{namespace}"}})')
        url = (prometheus_url.rstrip("/") + "/api/v1/query?"
               + urllib.parse.urlencode({"query": query}))
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            doc = json.load(resp)
        if doc.get("status") != "success":
            raise ClusterError(f"Prometheus at {prometheus_url} refused {query!r}: {doc}")
        for sample in doc["data"]["result"]:
            key = (sample["metric"].get("source_workload", "unknown"),
                   sample["metric"].get("destination_workload", "unknown"))
            rows[key] = rows.get(key, 0.0) + float(sample["value"][1])
    return pd.DataFrame(
        [{"source_workload": s, "destination_workload": d, "bytes": int(v)}
         for (s, d), v in sorted(rows.items())],
        columns=["source_workload", "destination_workload", "bytes"])
