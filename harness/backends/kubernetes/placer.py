"""The kubernetes backend's placer: the cluster's own schedulers place the producers.

``helm upgrade --install`` the chart with the producers under one scheduler
(``schedulerName``), then N times scale every producer Deployment to 0 and back, wait
until the scheduler has bound every pod, and read pod -> node from the API. This only
needs the API server and the schedulers, so it runs (and is tested) on kwok's fake
nodes too; there NetMARKS and firmament run as processes on this machine
(``k8s.hostsched``), as the chart's scheduler Deployments never start. Which scheduler
stands for a policy, and which chart component runs it, is the policy table's word
(``k8s.counterparts``); a scheduler the user runs is only waited for.

Creation order (``--order``): the scale-ups are sent in the redeployment's order, but
by parallel workers (one by one takes seconds on a busy control plane), so the first
Deployments of the order race each other and their pods reach the scheduler only
roughly in it. That is as close as this backend gets to any order, ``file`` included;
the report records the order sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.backends.base import BackendUnavailable, Placement
from harness.backends.k8s.counterparts import (
    chart_scheduler_name,
    counterpart,
    require_counterpart,
)
from harness.backends.k8s.hostsched import host_schedulers
from harness.backends.k8s.workloads import bound_placement
from harness.backends.kubernetes.options import KubernetesOptions
from harness.backends.kubernetes.release import Release
from harness.backends.layoutspace import LayoutSpace
from schedulers.creation import FILE_ORDER, CreationOrder

if TYPE_CHECKING:
    from schedulers import TrafficMatrix
    from schedulers.spec import KubernetesCounterpart

__all__ = ["KubernetesPlacer"]


class KubernetesPlacer:
    """Placement under the cluster's real schedulers.

    The layout space (pods, nodes, canonical layouts) is the models' one, with the
    cluster's real nodes in place of identical model nodes.
    """

    def __init__(self, release: Release) -> None:
        self.release = release
        self.space = LayoutSpace(release.economy, release.nodes)
        # policy -> a warning about the in-cluster extender's traffic (None: it saw some).
        self.extender_warnings: dict[str, str | None] = {}

    @property
    def options(self) -> KubernetesOptions:
        return self.release.options

    @property
    def node_names(self) -> list[str]:
        return self.space.node_names

    @property
    def pod_names(self) -> list[str]:
        return self.space.pod_names

    def canonical(self, assignments: Mapping[str, str]) -> str:
        return self.space.canonical(assignments)

    def scheduler_name(self, policy: str) -> str:
        """The schedulerName that policy answers to here (as the chart's value: "" for
        the cluster's default-scheduler), or BackendUnavailable."""
        if policy in self.options.scheduler_names:
            return self.options.scheduler_names[policy]
        return chart_scheduler_name(self.counterpart(policy))

    def counterpart(self, policy: str) -> KubernetesCounterpart:
        """The real scheduler that stands for ``policy``, or BackendUnavailable."""
        found = require_counterpart(policy, self.options.extra, "kubernetes")
        if found.kind == "plugins":
            raise BackendUnavailable(
                f"{policy}: {found.component} runs on the kwok backend only for now (the "
                "harness writes the objects its plugins read there); use --backend kwok")
        return found

    async def place(
        self,
        scheduler: str,
        deployments: int,
        *,
        traffic: TrafficMatrix | None = None,
        seed: int = 0,
        advance: Callable[[int], None] = lambda n: None,
        order: CreationOrder = FILE_ORDER,
    ) -> list[Placement]:
        """Redeploy ``deployments`` times under ``scheduler``; read each placement.
        Each redeployment scales its Deployments up in ``order``'s order for it (roughly:
        see the module doc).

        ``traffic`` feeds the host-process NetMARKS/firmament (kwok); in-cluster they
        read Istio's metrics from Prometheus themselves. Real schedulers take no ``seed``.
        """
        name = self.scheduler_name(scheduler)
        found = self.counterpart(scheduler)
        mode = self.scheduler_mode()
        if found.extender is not None and mode == "chart":
            raise BackendUnavailable(
                f"{scheduler}: the harness runs the kube-scheduler profile that calls an "
                "extender by URL only on this machine (kwok, or schedulers: host); in a "
                f"cluster, deploy a kube-scheduler whose profile {found.scheduler_name} "
                f"calls {found.extender.url} and name it with --external-scheduler "
                f"{scheduler}={found.scheduler_name} (docs/schedulers.md)")
        if (mode == "chart" and found.host_command and found.chart_key is None
                and not found.command):
            # e.g. trade: a binder the harness can run on this machine, but no chart
            # component deploys it; in chart mode nobody would bind its pods.
            raise BackendUnavailable(
                f"{scheduler}: the chart has no component for the {found.component}; run "
                "it on this machine (SETTLERS_KUBE_SCHEDULERS=host), or deploy it yourself "
                f"and name it with --external-scheduler {scheduler}={found.scheduler_name}")
        chart = mode == "chart" and not found.external
        # In-cluster NetMARKS/firmament read Prometheus themselves: the average since the
        # warm-up's start (unless the user's values choose a sliding traffic.window).
        since = (traffic.since if chart and traffic is not None
                 and self.user_traffic_window() is None else None)
        # Only placements are read here: on real nodes the producers need not run.
        phase = self.release.phase(
            scheduler_name=name, component=found.chart_key if chart else None,
            traffic_since=since, placeholder=True)
        await asyncio.to_thread(self.release.install, phase)
        host = (host_schedulers(found, name or found.scheduler_name,
                                kubeconfig=self.options.kubeconfig,
                                context=self.options.context, traffic=traffic)
                # A program of the user's runs on this machine in every mode.
                if mode == "host" or (found.command and not found.host_command)
                else contextlib.nullcontext())
        out: list[Placement] = []
        with host:
            for i in range(deployments):
                created = self.space.creation_order(order, i)
                assignments, seconds, unschedulable = await asyncio.to_thread(
                    self.redeploy_once, created)
                out.append(Placement(scheduler=scheduler, deployment=i,
                                     assignments=assignments, seconds=seconds,
                                     unschedulable=unschedulable, creation_order=created))
                advance(1)
        if chart and found.chart_key == "netmarks":
            self.extender_warnings[scheduler] = await asyncio.to_thread(
                self.extender_warning)
        return out

    def extender_warning(self) -> str | None:
        """What the chart's NetMARKS extender logged about the traffic it saw."""
        from harness.backends.kubernetes.extstatus import describe_status, read_extender_status

        cluster = self.release.cluster
        return describe_status(read_extender_status(cluster.core, self.options.namespace,
                                                    self.options.release))

    def user_traffic_window(self) -> float | None:
        """``traffic.window`` from the user's values files (the last one that sets it)."""
        import yaml

        window = None
        for path in self.options.values_files:
            try:
                doc = yaml.safe_load(Path(path).read_text()) or {}
            except (OSError, yaml.YAMLError):
                continue  # helm reports unreadable values files itself
            traffic = doc.get("traffic") if isinstance(doc, dict) else None
            if isinstance(traffic, dict) and "window" in traffic:
                try:
                    window = float(traffic["window"] or 0) or None
                except (TypeError, ValueError):
                    continue  # the chart's schema rejects it with the key's name
        return window

    def traffic_description(self, scheduler: str, traffic: TrafficMatrix | None) -> str:
        """What traffic ``scheduler`` placed with here (the run's report states it)."""
        from harness.backends.trafficinfo import describe_matrix
        from schedulers.promtraffic import iso_time
        from schedulers.registry import uses_traffic

        found = counterpart(scheduler, self.options.extra)
        if found is not None and (found.external or found.extender or found.command):
            return f"{found.component}: none from the harness (its own source, if any)"
        if not uses_traffic(scheduler):
            return "none (traffic-blind)"
        mode = self.scheduler_mode()
        what = found.component if found is not None else scheduler
        if mode == "host":
            return (f"{what} on this machine (--traffic file): the warm-up's traffic matrix, "
                    f"{describe_matrix(traffic)}")
        if mode == "external":
            return (f"{what} run outside the harness: its own traffic source and interval "
                    "(not set by the harness)")
        prom = (f"Prometheus {self.options.prometheus_url}" if self.options.prometheus_url
                else "Prometheus at the chart's prometheus.url")
        window = self.user_traffic_window()
        if window is not None:
            said = (f"in-cluster {what}: {prom}, sliding window of {window:g} s "
                    "(traffic.window in your values files)")
        elif traffic is not None and traffic.since is not None:
            said = (f"in-cluster {what}: {prom}, average since the warm-up's start "
                    f"{iso_time(traffic.since)} (traffic.since)")
        else:
            said = f"in-cluster {what}: {prom}, average since the scheduler's start"
        warning = self.extender_warnings.get(scheduler)
        return f"{said}. {warning}" if warning else said

    def scheduler_mode(self) -> str:
        mode = self.options.schedulers
        if mode not in ("auto", "chart", "host", "external"):
            raise BackendUnavailable(
                f"schedulers must be auto, chart, host or external, not {mode!r}")
        if mode == "auto":
            return "host" if self.release.nodes_are_fake() else "chart"
        return mode

    def redeploy_once(self, order: Sequence[str] | None = None
                      ) -> tuple[dict[str, str], float, tuple[str, ...]]:
        """Scale every producer to 0, wait, scale back (in ``order``, default the
        economy's, as far as parallel scale-ups keep it): the scheduler places them anew.

        Returns (``<item>-<i>`` -> node, seconds from scale-up to all placed, pods the
        scheduler reported Unschedulable).
        """
        import time

        timeout = self.options.timeout_s
        replicas = {item.name: item.replicas for item in self.release.economy}
        if order is not None:
            replicas = {name: replicas[name] for name in order}
        cluster = self.release.cluster
        with self.release.busy:
            self.release.check_open()
            cluster.scale_producers(dict.fromkeys(replicas, 0))
            cluster.delete_producer_pods(timeout)
            cluster.wait_no_producers(timeout)
            started = time.monotonic()
            cluster.scale_producers(replicas)
            result = cluster.wait_placed(sum(replicas.values()), timeout, started=started)
        placed = [p for p in result.pods if p.spec.node_name]
        return bound_placement(placed), result.seconds, result.unschedulable

    async def close(self) -> None:
        await asyncio.to_thread(self.release.cleanup)
