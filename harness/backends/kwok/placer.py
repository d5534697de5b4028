"""The kwok backend's placer: the real kube-scheduler on a kwok control plane.

Placement goes through a real kube-apiserver with kwok nodes (``harness.backends.k8s``):
every redeployment creates the economy's Deployments with the scheduler's
``schedulerName``, one after another in its creation order (``--order``), waits until
all pods are bound, reads pod -> node back and deletes
them. Which scheduler stands for a policy is the policy table's word
(``SPEC.kubernetes``, read through ``k8s.counterparts``), e.g.

- kube_default: the stock kube-scheduler (``default-scheduler``);
- netmarks: a second real kube-scheduler (``netmarks-scheduler``) whose extender is our
  NetMARKS webhook (``schedulers netmarks-extender``), fed the warm-up traffic matrix;
- firmament: our min-cost-flow custom scheduler (``schedulers firmament``) binding
  through the API;
- trade: our TraDE-style mapper (``schedulers trade``) binding the same way, given the
  topology's delays between the kwok nodes (``--network``);
- diktyo: a second kube-scheduler built with Diktyo's plugins (``diktyo-scheduler``);
  before it starts, the harness installs the CRDs and writes the AppGroup and
  NetworkTopology (``k8s.pluginsched``), and the pods carry the AppGroup's labels;
- a scheduler the user names (``--external-scheduler``/``--external-extender``, or a
  plug-in's SPEC): pods carry its schedulerName; the harness starts the profile for an
  extender at a URL, or the user's program, and otherwise only waits for the binding.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from harness.backends.base import BackendUnavailable, Placement
from harness.backends.k8s.counterparts import NO_EXTRA, counterpart, require_counterpart
from harness.backends.k8s.hostsched import host_schedulers
from harness.backends.k8s.signals import sigterm_as_interrupt
from harness.backends.layoutspace import LayoutSpace
from schedulers.creation import FILE_ORDER, CreationOrder
from settlers.economy import Economy

if TYPE_CHECKING:
    from results.topology import Topology
    from schedulers import TrafficMatrix
    from schedulers.network import NodeNetwork
    from schedulers.spec import KubernetesCounterpart, PluginSetup

__all__ = ["KwokPlacer"]

# How long a redeployment may wait for its pods to be bound.
_BIND_TIMEOUT_S = 60.0


class KwokPlacer:
    """Placements by the real schedulers on a kwok cluster of N identical nodes.

    The control plane starts at the first placement and stops at close().
    """

    # Schedulers the user named for this run (policy -> counterpart), beside the table.
    _extra: Mapping[str, KubernetesCounterpart] = NO_EXTRA

    def __init__(self, economy: Economy, nodes: int,
                 extra: Mapping[str, KubernetesCounterpart] = NO_EXTRA,
                 topology: Topology | None = None, *, cpu_m: int | None = None,
                 options: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._economy = economy
        self._extra = extra
        # Policy -> options (the run's scheduler_options), for "plugins" counterparts.
        self._options = {k: dict(v) for k, v in (options or {}).items()}
        self._topology = topology
        self.space = LayoutSpace.for_topology(economy, nodes, topology, cpu_m)
        self._cluster: Any = None
        self._stops: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._closed = False
        # A SIGTERM must not leave the control plane running: unwind like Ctrl-C. Here,
        # not where the cluster starts: that runs in a worker thread, and only the main
        # thread can install a signal handler.
        sigterm_as_interrupt()

    @property
    def node_names(self) -> list[str]:
        return self.space.node_names

    @property
    def pod_names(self) -> list[str]:
        return self.space.pod_names

    def canonical(self, assignments: Mapping[str, str]) -> str:
        return self.space.canonical(assignments)

    def _ensure_cluster(self) -> Any:
        if self._cluster is not None:
            return self._cluster
        try:
            from harness.backends.k8s import K8sBinariesMissing, KwokCluster, binaries

            bins = binaries()
        except K8sBinariesMissing as exc:
            raise BackendUnavailable(
                f"the kwok backend needs the Kubernetes binaries: {exc} (run tools/k8s/build)"
            ) from None
        node = self.space.nodes[0]
        cluster = KwokCluster.start(
            nodes=len(self.space.nodes), cpu=f"{node.cpu_m}m", memory=str(node.memory),
            pods=node.max_pods, bins=bins, topology=self._topology,
        )
        with self._lock:
            # close() may have run (Ctrl-C, SIGTERM) while this worker thread was still
            # starting the cluster; asyncio joins the thread before exiting, so stopping
            # it here is what keeps the control plane from outliving the run.
            if self._closed:
                cluster.stop()
                raise BackendUnavailable("the kwok backend was closed while its cluster started")
            self._cluster = cluster
            self._stops.append(cluster.stop)
        return cluster

    async def place(
        self,
        scheduler: str,
        deployments: int,
        *,
        traffic: TrafficMatrix | None,
        seed: int,
        advance: Callable[[int], None] = lambda n: None,
        order: CreationOrder = FILE_ORDER,
    ) -> list[Placement]:
        found = require_counterpart(scheduler, self._extra, "kwok")
        return await asyncio.to_thread(self._place, scheduler, found, deployments, traffic,
                                       advance, order)

    def _place(self, scheduler: str, found: KubernetesCounterpart, deployments: int,
               traffic: TrafficMatrix | None, advance: Callable[[int], None],
               order: CreationOrder = FILE_ORDER) -> list[Placement]:
        from harness.backends.k8s import collect_rounds

        cluster = self._ensure_cluster()
        name = found.scheduler_name
        setup = (self._plugin_setup(cluster, scheduler, found, traffic)
                 if found.kind == "plugins" else None)
        # e.g. netmarks: our extender + a second real kube-scheduler; firmament: our
        # binder; diktyo: its own kube-scheduler; kube_default or a scheduler the user
        # runs: nothing. Stopped after this placement phase.
        with host_schedulers(found, name, kubeconfig=cluster.kubeconfig, context=None,
                             traffic=traffic, network=self._network(scheduler),
                             setup=setup):
            # Pods nobody binds (a scheduler of the user's that is not running) fail
            # after _BIND_TIMEOUT_S with "nobody bound pods with schedulerName ...".
            # Each round creates the Deployments one after another in its creation order.
            rounds = collect_rounds(cluster, self._economy, name, deployments,
                                    advance=advance, timeout=_BIND_TIMEOUT_S,
                                    orders=lambda i: self.space.creation_order(order, i),
                                    pod_labels=setup.pod_labels if setup else None)
        return [Placement(scheduler, i, r.assignments, r.seconds,
                          creation_order=r.creation_order) for i, r in enumerate(rounds)]

    def _network(self, scheduler: str) -> NodeNetwork | None:
        """The topology's delays between the kwok nodes, for a binder whose policy weighs
        them (trade); None for the others and without a topology (a flat network)."""
        from schedulers.registry import PluginError, UnknownPolicyError, policy_spec

        if self._topology is None:
            return None
        try:
            uses = policy_spec(scheduler).uses_network
        except (UnknownPolicyError, PluginError):
            return None  # a scheduler the user named: it brings its own
        return self._topology.network() if uses else None

    def _plugin_setup(self, cluster: Any, scheduler: str, found: KubernetesCounterpart,
                      traffic: TrafficMatrix | None) -> PluginSetup:
        """What ``found``'s plugins read, from the kwok nodes as they are (names and
        labels) and the topology's network, written to the cluster."""
        from harness.backends.k8s.pluginsched import install_setup, plugin_setup
        from results.topology import resolve_topology

        nodes = [(n.metadata.name, dict(n.metadata.labels or {}))
                 for n in cluster.core_v1().list_node().items]
        topology = self._topology or resolve_topology(None, nodes=len(self.space.nodes))
        setup = plugin_setup(found, economy=self._economy, nodes=nodes,
                             network=topology.network(), traffic=traffic,
                             options=self._options.get(scheduler, {}))
        install_setup(cluster.api_client(), setup)
        return setup

    def traffic_description(self, scheduler: str, traffic: TrafficMatrix | None) -> str:
        """What traffic ``scheduler`` placed with here (the run's report states it)."""
        from harness.backends.trafficinfo import describe_matrix
        from schedulers.registry import uses_traffic

        found = counterpart(scheduler, self._extra)
        if found is not None and (found.external or found.extender or found.command):
            return f"{found.component}: none from the harness (its own source, if any)"
        if not uses_traffic(scheduler):
            return "none (traffic-blind)"
        what = found.component if found is not None else scheduler
        if found is not None and found.kind == "plugins":
            return (f"{what}: the warm-up's traffic matrix, {describe_matrix(traffic)}, "
                    "written into the objects its plugins read")
        return (f"{what} on this machine (--traffic file): the warm-up's traffic matrix, "
                f"{describe_matrix(traffic)}")

    async def close(self) -> None:
        with self._lock:
            self._closed = True
            stops, self._stops = self._stops, []
        for stop in reversed(stops):
            await asyncio.to_thread(stop)
        self._cluster = None

