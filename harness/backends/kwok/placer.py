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

For a scenario the placer also keeps one deployment (``MovesThroughApi``): `deploy`
places the economy once and leaves it, and the scheduler's processes, running;
`move` evicts a pod and binds its replacement to a node, `cordon` marks a node
unschedulable, `undeploy` ends it. How a move avoids racing the scheduler:
``harness.backends.k8s.moves``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from harness.backends.base import BackendUnavailable, Placement
from harness.backends.k8s.counterparts import NO_EXTRA, counterpart, require_counterpart
from harness.backends.k8s.hostsched import host_schedulers
from harness.backends.k8s.signals import sigterm_as_interrupt
from harness.backends.layoutspace import LayoutSpace
from schedulers.creation import FILE_ORDER, CreationOrder
from settlers.economy import Economy

if TYPE_CHECKING:
    from harness.backends.k8s.moves import LiveDeployment
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
        # The deployment deploy() keeps, and what stops its scheduler's processes.
        self._live: LiveDeployment | None = None
        self._live_stop: Callable[[], None] | None = None
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
        running, setup = self._host_schedulers(cluster, scheduler, found, traffic)
        # Stopped after this placement phase.
        with running:
            # Pods nobody binds (a scheduler of the user's that is not running) fail
            # after _BIND_TIMEOUT_S with "nobody bound pods with schedulerName ...".
            # Each round creates the Deployments one after another in its creation order.
            rounds = collect_rounds(cluster, self._economy, name, deployments,
                                    advance=advance, timeout=_BIND_TIMEOUT_S,
                                    orders=lambda i: self.space.creation_order(order, i),
                                    pod_labels=setup.pod_labels if setup else None)
        return [Placement(scheduler, i, r.assignments, r.seconds,
                          creation_order=r.creation_order) for i, r in enumerate(rounds)]

    def _host_schedulers(self, cluster: Any, scheduler: str, found: KubernetesCounterpart,
                         traffic: TrafficMatrix | None
                         ) -> tuple[AbstractContextManager[None], PluginSetup | None]:
        """The scheduler's processes on this machine (to be entered), and its plugins'
        setup (written to the cluster now). E.g. netmarks: our extender + a second real
        kube-scheduler; firmament: our binder; diktyo: its own kube-scheduler;
        kube_default or a scheduler the user runs: nothing."""
        setup = (self._plugin_setup(cluster, scheduler, found, traffic)
                 if found.kind == "plugins" else None)
        return host_schedulers(found, found.scheduler_name, kubeconfig=cluster.kubeconfig,
                               context=None, traffic=traffic,
                               network=self._network(scheduler), setup=setup), setup

    # ----- one deployment that stays (MovesThroughApi; harness.backends.k8s.moves) -----
    async def deploy(self, scheduler: str, *, traffic: TrafficMatrix | None,
                     seed: int) -> Placement:
        """Deploy the economy once under ``scheduler`` (Deployments in the economy's
        order) and keep it, with the scheduler's processes, until `undeploy`."""
        found = require_counterpart(scheduler, self._extra, "kwok")
        return await asyncio.to_thread(self._deploy, scheduler, found, traffic)

    def _deploy(self, scheduler: str, found: KubernetesCounterpart,
                traffic: TrafficMatrix | None) -> Placement:
        from harness.backends.k8s.moves import LiveDeployment

        if self._live is not None:
            raise RuntimeError("the kwok placer already has a deployment: undeploy() first")
        cluster = self._ensure_cluster()
        order = self.space.creation_order(FILE_ORDER, 0)
        with contextlib.ExitStack() as stack:
            running, setup = self._host_schedulers(cluster, scheduler, found, traffic)
            stack.enter_context(running)
            live, seconds = LiveDeployment.create(
                cluster, self._economy, found.scheduler_name, order=order,
                pod_labels=setup.pod_labels if setup else None, timeout=_BIND_TIMEOUT_S)
            # Success: the processes keep running; close() or undeploy() stops them.
            stop = stack.pop_all().close
        with self._lock:
            closed = self._closed
            if not closed:
                self._live, self._live_stop = live, stop
                self._stops.append(stop)  # after cluster.stop: close() runs it first
        if closed:  # close() ran meanwhile (Ctrl-C): it could not see these processes
            stop()
            raise BackendUnavailable("the kwok backend was closed while it deployed")
        return Placement(scheduler, 0, live.assignments, seconds, creation_order=order)

    def _require_live(self) -> LiveDeployment:
        if self._live is None:
            raise RuntimeError("the kwok placer has no deployment: deploy() first")
        return self._live

    @property
    def api_names(self) -> dict[str, str]:
        """Pod name (``<item>-<i>``) -> the API's pod name, of the deployment now."""
        return self._require_live().names

    async def move(self, pod: str, node: str) -> tuple[str, str]:
        """Evict ``pod`` (``<item>-<i>``), bind its replacement to ``node``; returns the
        replacement's name (``<item>-<next i>``) and its node."""
        return await asyncio.to_thread(self._require_live().move, pod, node)

    async def cordon(self, node: str, on: bool = True) -> None:
        from harness.backends.k8s.moves import cordon

        await asyncio.to_thread(cordon, self._ensure_cluster(), node, on)

    async def undeploy(self) -> None:
        """Delete the deployment's Deployments and pods, stop the scheduler's processes."""
        with self._lock:
            live, stop = self._live, self._live_stop
            self._live = self._live_stop = None
            if stop is not None:
                self._stops.remove(stop)
        if live is None or stop is None:
            return
        try:
            await asyncio.to_thread(live.delete)
        finally:
            await asyncio.to_thread(stop)

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
        self._live = self._live_stop = None

