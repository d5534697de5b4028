"""The `kubernetes` backend: the experiment against a real cluster, through the chart.

Two halves, as every backend (``harness.backends.base``):

- placement (`KubernetesBackend.place`): ``helm upgrade --install`` the chart with
  the producers under one scheduler (``schedulerName``), then N times scale every
  producer Deployment to 0 and back, wait until the scheduler has bound every pod,
  and read pod -> node from the API. This half only needs the API server and the
  schedulers, so it runs (and is tested) on kwok's fake nodes too.
- measurement (`KubernetesDataPlane`): pin the producers to a layout's nodes
  (``items.<item>.nodes`` -> spec.nodeName), wait until they are Ready, and run the
  order app *inside* the cluster as the chart's order-app Job; its log carries the
  raw samples. It needs real nodes that run containers (kwok pods never run).

The release is uninstalled at close(), on Ctrl-C (close() runs from the
experiment's exit stack while asyncio.run unwinds) and, as a last resort, at
interpreter exit or SIGTERM.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.backends.base import (
    BackendUnavailable,
    DataPlane,
    Placement,
    WireProtocol,
)
from harness.backends.embedded import ModelPlacement
from harness.backends.hostsched import host_schedulers
from harness.backends.kubernetes.cluster import ClusterError, KubeCluster
from harness.backends.kubernetes.dataplane import SWEEP_LABEL, KubernetesDataPlane
from harness.backends.kubernetes.helm import CHART_DIR, Helm, HelmNotFound
from harness.backends.kubernetes.values import DEFAULT_SCHEDULER_NAMES, PhaseValues
from harness.backends.kwok.workloads import bound_placement
from harness.backends.signals import sigterm_as_interrupt
from settlers.economy import Economy

if TYPE_CHECKING:
    from harness.config import ExperimentConfig
    from schedulers import TrafficMatrix

__all__ = ["KubernetesBackend", "KubernetesOptions", "open_kubernetes_backend", "options_for"]


@dataclass(frozen=True)
class KubernetesOptions:
    """Where and how to install the testbed. Defaults suit `harness run` as is."""

    context: str | None = None          # kubeconfig context (None = current)
    kubeconfig: Path | None = None      # None = $KUBECONFIG or ~/.kube/config
    namespace: str = "settlers"
    release: str = "settlers"
    chart: Path = CHART_DIR
    # The user's own values files (image, Istio, Prometheus, ...): the harness's
    # phase values go on top of them.
    values_files: tuple[Path, ...] = ()
    # Prometheus as the cluster sees it (the chart's prometheus.url, for NetMARKS).
    prometheus_url: str | None = None
    # Prometheus as this process reaches it (e.g. a port-forward), for traffic
    # snapshots; None = no byte counts.
    prometheus_query_url: str | None = None
    port: int = 8080
    scheduler_names: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_SCHEDULER_NAMES))
    # Who runs netmarks-scheduler/firmament while their policy places: "chart" (the
    # chart's Deployments), "host" (processes on this machine, `hostsched`), "external"
    # (already running), or "auto": host when the nodes are kwok's fakes, else chart.
    schedulers: str = "auto"
    nodes: tuple[str, ...] | None = None  # restrict to these nodes (default: all usable)
    # Where layouts are measured: "cluster" (pinned pods + the order-app Job),
    # "emulated" (the emulated cluster on this machine), or "auto": emulated when the
    # nodes are kwok's fakes (they run no containers), else cluster.
    data_plane: str = "auto"
    link: str = "edge"                  # link preset of the emulated data plane
    timeout_s: float = 300.0
    keep: bool = False                  # leave the release installed at close()

    @classmethod
    def from_env(cls, **overrides: Any) -> KubernetesOptions:
        """Defaults, then SETTLERS_KUBE_* / SETTLERS_PROMETHEUS_* variables, then overrides."""
        env = os.environ
        opts: dict[str, Any] = {}
        for key, var in (("namespace", "SETTLERS_KUBE_NAMESPACE"),
                         ("release", "SETTLERS_KUBE_RELEASE"),
                         ("schedulers", "SETTLERS_KUBE_SCHEDULERS"),
                         ("data_plane", "SETTLERS_KUBE_DATA_PLANE"),
                         ("prometheus_url", "SETTLERS_PROMETHEUS_URL"),
                         ("prometheus_query_url", "SETTLERS_PROMETHEUS_QUERY_URL")):
            if env.get(var):
                opts[key] = env[var]
        if env.get("SETTLERS_KUBE_KEEP", "").lower() in ("1", "true", "yes"):
            opts["keep"] = True
        if env.get("SETTLERS_KUBE_VALUES"):
            opts["values_files"] = tuple(Path(p) for p in env["SETTLERS_KUBE_VALUES"].split(",")
                                         if p.strip())
        opts.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**opts)


class KubernetesBackend(ModelPlacement):
    """Placement under the cluster's real schedulers; measurement with pinned layouts.

    The layout space (pods, nodes, canonical layouts) is the models' one, with the
    cluster's real nodes in place of identical model nodes.
    """

    name = "kubernetes"

    def __init__(self, economy: Economy, options: KubernetesOptions | None = None,
                 *, helm: Helm | None = None) -> None:
        self.economy = economy
        self.options = options or KubernetesOptions()
        opts = self.options
        try:
            self.helm = helm or Helm(kubeconfig=opts.kubeconfig, context=opts.context,
                                     timeout_s=opts.timeout_s + 60)
            self.cluster = KubeCluster(opts.namespace, opts.release, context=opts.context,
                                       kubeconfig=opts.kubeconfig)
            self.kube_version = self.cluster.server_version()
            nodes = self.cluster.schedulable_nodes(
                None if opts.nodes is None else list(opts.nodes))
        except HelmNotFound as exc:
            raise BackendUnavailable(str(exc)) from None
        except Exception as exc:  # config errors, unreachable API server, no nodes
            raise BackendUnavailable(
                f"cannot use the Kubernetes cluster (context {opts.context or 'current'}): "
                f"{exc}") from None
        super().__init__(economy, len(nodes))
        self._nodes = nodes
        self._installed = False
        self._closed = False
        self._cleanup_lock = threading.Lock()
        # Held by every cluster-changing step (they run in worker threads): cleanup
        # waits for the step in flight, or helm would refuse to uninstall a release
        # with an upgrade in progress and the upgrade would land after the uninstall.
        self._busy = threading.RLock()
        atexit.register(self._cleanup)
        sigterm_as_interrupt()

    def scheduler_name(self, policy: str) -> str:
        """The schedulerName that policy answers to here, or BackendUnavailable."""
        try:
            return self.options.scheduler_names[policy]
        except KeyError:
            raise BackendUnavailable(
                f"scheduler {policy!r} has no Kubernetes implementation; on the kubernetes "
                f"backend use {', '.join(self.options.scheduler_names)}") from None

    # -- placement ----------------------------------------------------------------------
    async def place(
        self,
        scheduler: str,
        deployments: int,
        *,
        traffic: TrafficMatrix | None = None,
        seed: int = 0,
        advance: Callable[[int], None] = lambda n: None,
    ) -> list[Placement]:
        """Redeploy ``deployments`` times under ``scheduler``; read each placement.

        ``traffic`` feeds the host-process NetMARKS/firmament (kwok); in-cluster they
        read Istio's metrics from Prometheus themselves. Real schedulers take no ``seed``.
        """
        name = self.scheduler_name(scheduler)
        mode = self._scheduler_mode()
        chart = mode == "chart"
        # In-cluster NetMARKS/firmament read Prometheus themselves: the average since the
        # warm-up's start (unless the user's values choose a sliding traffic.window).
        since = (traffic.since if chart and traffic is not None
                 and self.user_traffic_window() is None else None)
        phase = self._phase(scheduler_name=name, netmarks=chart and scheduler == "netmarks",
                            firmament=chart and scheduler == "firmament", traffic_since=since)
        await asyncio.to_thread(self.install, phase)
        host = (host_schedulers(scheduler, name, kubeconfig=self.options.kubeconfig,
                                context=self.options.context, traffic=traffic)
                if mode == "host" else contextlib.nullcontext())
        out: list[Placement] = []
        with host:
            for i in range(deployments):
                assignments, seconds, unschedulable = await asyncio.to_thread(
                    self.redeploy_once)
                out.append(Placement(scheduler=scheduler, deployment=i,
                                     assignments=assignments, seconds=seconds,
                                     unschedulable=unschedulable))
                advance(1)
        return out

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

        if not uses_traffic(scheduler):
            return "none (traffic-blind)"
        mode = self._scheduler_mode()
        what = "NetMARKS extender" if scheduler == "netmarks" else "firmament scheduler"
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
            return (f"in-cluster {what}: {prom}, sliding window of {window:g} s "
                    "(traffic.window in your values files)")
        if traffic is not None and traffic.since is not None:
            return (f"in-cluster {what}: {prom}, average since the warm-up's start "
                    f"{iso_time(traffic.since)} (traffic.since)")
        return f"in-cluster {what}: {prom}, average since the scheduler's start"

    def _scheduler_mode(self) -> str:
        mode = self.options.schedulers
        if mode not in ("auto", "chart", "host", "external"):
            raise BackendUnavailable(
                f"schedulers must be auto, chart, host or external, not {mode!r}")
        if mode == "auto":
            return "host" if self.cluster.nodes_are_fake(self.node_names) else "chart"
        return mode

    def install(self, phase: PhaseValues) -> None:
        """``helm upgrade --install`` the release with this phase's values on top."""
        with self._busy:
            if self._closed:
                raise ClusterError("the kubernetes backend is closed")
            # Before helm runs: an install cut short must still be uninstalled.
            self._installed = True
            self.helm.upgrade_install(self.options.release, self.options.namespace,
                                      [phase.render()], chart=self.options.chart,
                                      value_files=self.options.values_files, wait=False)

    def redeploy_once(self) -> tuple[dict[str, str], float, tuple[str, ...]]:
        """Scale every producer to 0, wait, scale back: the scheduler places them anew.

        Returns (``<item>-<i>`` -> node, seconds from scale-up to all placed, pods the
        scheduler reported Unschedulable).
        """
        import time

        timeout = self.options.timeout_s
        replicas = {item.name: item.replicas for item in self.economy}
        with self._busy:
            if self._closed:
                raise ClusterError("the kubernetes backend is closed")
            self.cluster.scale_producers(dict.fromkeys(replicas, 0))
            self.cluster.delete_producer_pods(timeout)
            self.cluster.wait_no_producers(timeout)
            started = time.monotonic()
            self.cluster.scale_producers(replicas)
            result = self.cluster.wait_placed(sum(replicas.values()), timeout,
                                              started=started)
        placed = [p for p in result.pods if p.spec.node_name]
        return bound_placement(placed), result.seconds, result.unschedulable

    # -- measurement ----------------------------------------------------------------------
    @property
    def emulated(self) -> bool:
        """Whether layouts are measured on the emulated data plane (see `data_plane`)."""
        mode = self.options.data_plane
        if mode not in ("auto", "cluster", "emulated"):
            raise BackendUnavailable(f"data_plane must be auto, cluster or emulated, not {mode!r}")
        if mode == "auto":
            return self.cluster.nodes_are_fake(self.node_names)
        return mode == "emulated"

    async def start_data_plane(self, protocol: WireProtocol,
                               placement: Mapping[str, str]) -> DataPlane:
        if self.emulated:
            from harness.backends.kubernetes.emulated import start_emulated

            return await start_emulated(self.economy, self.node_names, protocol, placement,
                                        link=self.options.link)
        plane = KubernetesDataPlane(self, protocol)
        await plane.relayout(placement)
        return plane

    def _phase(self, **kw: Any) -> PhaseValues:
        return PhaseValues(economy=self.economy, prometheus_url=self.options.prometheus_url,
                           port=self.options.port, **kw)

    # -- cleanup ----------------------------------------------------------------------------
    async def close(self) -> None:
        await asyncio.to_thread(self._cleanup)

    def _cleanup(self) -> None:
        """Uninstall the release (unless ``keep``) and delete our Jobs. Idempotent."""
        with self._cleanup_lock:
            if self._closed:
                return
            self._closed = True
            self.cluster.cancelled.set()
            atexit.unregister(self._cleanup)
            self._busy.acquire()
            try:
                with contextlib.suppress(Exception):
                    self.cluster.batch.delete_collection_namespaced_job(
                        self.options.namespace, label_selector=SWEEP_LABEL,
                        propagation_policy="Background")
                if self._installed and not self.options.keep:
                    self.helm.uninstall(self.options.release, self.options.namespace)
            finally:
                self._busy.release()
                self.cluster.close()


def open_kubernetes_backend(config: ExperimentConfig, **options: Any) -> KubernetesBackend:
    """The backend for `harness run --backend kubernetes`: the experiment's economy,
    ``--kube-context``, ``--kube-namespace`` and ``--prometheus-url``; the rest from
    SETTLERS_KUBE_* variables or ``options``. Flags beat variables."""
    return KubernetesBackend(config.load_economy(), options_for(config, **options))


def options_for(config: ExperimentConfig, **options: Any) -> KubernetesOptions:
    """Defaults < SETTLERS_KUBE_* variables < the experiment's kube settings < `options`."""
    return KubernetesOptions.from_env(
        **{"context": config.kube_context, "namespace": config.kube_namespace,
           "prometheus_url": config.prometheus_url, **options})

