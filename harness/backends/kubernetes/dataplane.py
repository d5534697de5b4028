"""The in-cluster data plane of the kubernetes backend: the producers pinned to one
layout at a time, orders sent by the chart's order-app Job, bytes from Istio's counters.

It needs nodes that run containers; on kwok the backend measures on the emulated data
plane instead (`emulated`). It shares the release with the placer through `Release`
(its lock, its closed flag, the phase values), not through the backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness.backends.base import TELEMETRY_KEYS
from harness.backends.k8s.workloads import bound_placement
from harness.backends.kubernetes.cluster import ClusterError
from harness.backends.kubernetes.meshbytes import MeshMeter, Workloads
from harness.backends.kubernetes.orders import job_node, parse_job_log, wait_job
from harness.backends.kubernetes.release import SWEEP_LABEL, Release
from harness.backends.kubernetes.values import pins_by_item
from settlers.promql import http_query
from settlers.wire import WireProtocol

__all__ = ["KubernetesDataPlane"]


@dataclass
class KubernetesDataPlane:
    """The producers pinned to one layout at a time; orders run in-cluster as a Job."""

    release: Release
    protocol: WireProtocol
    placement: dict[str, str] = field(default_factory=dict)
    node_names: list[str] = field(init=False)
    prometheus_url: str | None = field(init=False)
    # Order Job name -> the node its pod ran on (Istio names the Job's workload so).
    job_nodes: dict[str, str] = field(default_factory=dict)
    meter: MeshMeter | None = field(init=False)
    pods: list[str] = field(default_factory=list)  # the producers' pods, once Ready

    def __post_init__(self) -> None:
        self.node_names = self.release.node_names
        self.prometheus_url = self.release.options.prometheus_query_url
        self.meter = (MeshMeter(http_query(self.prometheus_url), self.release.options.namespace,
                                cancelled=self.release.cluster.cancelled)
                      if self.prometheus_url else None)

    async def relayout(self, placement: Mapping[str, str]) -> None:
        """Pin every producer to its node and wait until all are Ready there."""
        await asyncio.to_thread(self._relayout, dict(placement))

    def _relayout(self, placement: dict[str, str]) -> None:
        b = self.release
        with b.busy:
            b.install(b.phase(protocol=self.protocol, placement=placement))
            expected = sum(item.replicas for item in b.economy)
            deadline = time.monotonic() + b.options.timeout_s
            while True:
                result = b.cluster.wait_placed(
                    expected, max(1.0, deadline - time.monotonic()), ready=True)
                # A pod of the new layout may wait for an old one's resources on its
                # node (Unschedulable until the old pod is gone): give it the timeout.
                if not result.unschedulable or time.monotonic() > deadline:
                    break
                if b.cluster.cancelled.wait(0.5):
                    raise ClusterError("cancelled: the backend is shutting down")
        if result.unschedulable:
            # Pinned by a required node affinity: a pod that does not fit its node stays
            # Pending with the scheduler's reason, instead of failing over and over.
            raise ClusterError(
                "pinned producer pods do not fit their nodes (Pending, FailedScheduling): "
                + ", ".join(result.unschedulable)
                + f"; `kubectl -n {b.options.namespace} describe pod` says why")
        got = pins_by_item(bound_placement(result.pods))
        self.pods = [p.metadata.name for p in result.pods]
        want = pins_by_item(placement)
        wrong = sorted(i for i in want if sorted(want[i]) != sorted(got.get(i, [])))
        if wrong:
            raise ClusterError(f"pods of {', '.join(wrong)} are not on the pinned nodes yet")
        self.placement = placement

    def entry(self, item: str) -> str:
        """Where in-cluster clients reach ``item`` (the order Job uses these names)."""
        ns = self.release.options.namespace
        return f"{item}.{ns}.svc:{self.release.options.port}"

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
        b = self.release
        job = self.order_job(protocol, items, sizes, count=count, repeat=repeat, warmup=warmup,
                             timeout=timeout)
        name = job["metadata"]["name"]
        batch, core, ns = b.cluster.batch, b.cluster.core, b.options.namespace
        with b.busy:
            b.check_open()
            batch.create_namespaced_job(ns, job)
        try:
            per_order = (repeat + warmup) * len(items) * len(sizes)
            log = wait_job(batch, core, ns, name, cancelled=b.cluster.cancelled,
                           timeout_s=b.options.timeout_s + per_order * timeout)
            self.job_nodes[name] = job_node(core, ns, name)
        finally:
            with contextlib.suppress(Exception):
                batch.delete_namespaced_job(name, ns, propagation_policy="Background")
        return parse_job_log(log)

    def order_job(self, protocol: WireProtocol, items: list[str], sizes: list[int], *,
                  count: int = 1, repeat: int = 10, warmup: int = 2,
                  timeout: float = 30.0) -> dict[str, Any]:
        """The chart's order-app Job for this sweep, under a fresh name (not created)."""
        b = self.release
        values = b.phase(protocol=protocol, placement=self.placement).render()
        values["orderApp"] = {"enabled": True, "items": list(items),
                              "sizes": [int(s) for s in sizes], "count": count,
                              "repeat": repeat, "warmup": warmup,
                              "extraArgs": ["--timeout", str(timeout)]}
        (job,) = b.helm.template(
            [values], release=b.options.release, namespace=b.options.namespace,
            chart=b.options.chart, kube_version=b.kube_version,
            value_files=b.options.values_files,
            extra=["--show-only", "templates/order-app-job.yaml"])
        # Not all digits: Istio would take "<name>-<8-10 digits>" for a CronJob's Job
        # and report the workload without the suffix.
        name = f"{b.options.release}-sweep-s{uuid.uuid4().hex[:7]}"
        job["metadata"]["name"] = name
        job["metadata"]["labels"][SWEEP_LABEL] = name
        # Created through the API, not by helm: the chart's hook annotations mean nothing.
        annotations = {k: v for k, v in (job["metadata"].get("annotations") or {}).items()
                       if not k.startswith("helm.sh/hook")}
        job["metadata"]["annotations"] = annotations
        return dict(job)

    def traffic_snapshot(self) -> pd.DataFrame:
        """Cumulative Istio bytes per workload and node pair (empty without Prometheus).

        Blocks until Prometheus has scraped past this call (`MeshMeter.snapshot`), so
        a snapshot after an order Job includes the Job's last bytes. Nodes come from
        the pinned layout; the order Job's from its pod.
        """
        if self.meter is None:
            return pd.DataFrame(columns=[*TELEMETRY_KEYS, "bytes"])
        return self.meter.snapshot(Workloads.from_layout(self.placement, self.job_nodes),
                                   pods=self.pods)

    async def stop(self) -> None:
        return None

