"""The chart's release in the cluster: the state the placer and the data plane share.

Both halves of the kubernetes backend change the same Helm release (the placer
installs a scheduler phase, the in-cluster data plane a pinned layout and order Jobs),
so both hold this object rather than each other: every cluster-changing step runs
under its `busy` lock and checks `closed`, and `cleanup()` uninstalls the release
(unless ``keep``) and deletes the order Jobs, at close(), on Ctrl-C, and as a last
resort at interpreter exit or SIGTERM.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from typing import TYPE_CHECKING, Any

from harness.backends.base import BackendUnavailable
from harness.backends.k8s.signals import sigterm_as_interrupt
from harness.backends.kubernetes.cluster import ClusterError, KubeCluster
from harness.backends.kubernetes.helm import Helm, HelmNotFound
from harness.backends.kubernetes.options import HARNESS_OWNER, KubernetesOptions
from harness.backends.kubernetes.values import PhaseValues
from settlers.economy import Economy

if TYPE_CHECKING:
    from schedulers import Node

__all__ = ["SWEEP_LABEL", "Release"]

# Marks the order Jobs the data plane creates (deleted at cleanup).
SWEEP_LABEL = "settlers-testbed.io/sweep"


class Release:
    """The testbed's Helm release in one cluster, and the cluster's usable nodes."""

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
            self.nodes: list[Node] = self.cluster.schedulable_nodes(
                None if opts.nodes is None else list(opts.nodes))
        except HelmNotFound as exc:
            raise BackendUnavailable(str(exc)) from None
        except Exception as exc:  # config errors, unreachable API server, no nodes
            raise BackendUnavailable(
                f"cannot use the Kubernetes cluster (context {opts.context or 'current'}): "
                f"{exc}") from None
        self.installed = False
        self.closed = False
        self._cleanup_lock = threading.Lock()
        # Held by every cluster-changing step (they run in worker threads): cleanup
        # waits for the step in flight, or helm would refuse to uninstall a release
        # with an upgrade in progress and the upgrade would land after the uninstall.
        self.busy = threading.RLock()
        atexit.register(self.cleanup)
        sigterm_as_interrupt()

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def nodes_are_fake(self) -> bool:
        """Whether the usable nodes are kwok's (they run no containers)."""
        return self.cluster.nodes_are_fake(self.node_names)

    def phase(self, **kw: Any) -> PhaseValues:
        """The chart values of one phase (a scheduler, or a pinned layout) for this economy."""
        return PhaseValues(economy=self.economy, prometheus_url=self.options.prometheus_url,
                           port=self.options.port, **kw)

    def check_open(self) -> None:
        """Raise if cleanup has run (call with `busy` held)."""
        if self.closed:
            raise ClusterError("the kubernetes backend is closed")

    def check_ownership(self) -> None:
        """Refuse (ClusterError) to install into a namespace that holds a testbed
        release the harness did not install, or to take over such a release: its
        producers share the item names, and our cleanup would uninstall it."""
        opts = self.options
        for rel in self.helm.list_releases(opts.namespace):
            name = str(rel.get("name", ""))
            if not str(rel.get("chart", "")).startswith("settlers-testbed-"):
                if name == opts.release:
                    raise ClusterError(
                        f"Helm release {name!r} in {opts.namespace} is of another chart "
                        f"({rel.get('chart')}); name the harness's release otherwise "
                        "(--kube-release)")
                continue
            ours = self.helm.get_values(name, opts.namespace).get("managedBy") == HARNESS_OWNER
            if ours and name == opts.release:
                continue  # ours, e.g. left by an earlier run with keep
            why = ("another harness release (another --kube-release)" if ours
                   else "a release the harness did not install")
            raise ClusterError(
                f"namespace {opts.namespace} holds Helm release {name!r} of the chart "
                f"({why}); the harness changes and uninstalls only its own release "
                f"{opts.release!r}, and the producers of two releases would share names. "
                f"Run in another namespace (--kube-namespace), or uninstall {name!r} "
                "yourself")

    def owned(self) -> bool:
        """Whether our release exists and is the harness's (safe to uninstall)."""
        try:
            values = self.helm.get_values(self.options.release, self.options.namespace)
        except Exception:
            return False
        return values.get("managedBy") == HARNESS_OWNER

    def install(self, phase: PhaseValues) -> None:
        """``helm upgrade --install`` the release with this phase's values on top."""
        with self.busy:
            self.check_open()
            if not self.installed:
                self.check_ownership()
            # Before helm runs: an install cut short must still be uninstalled.
            self.installed = True
            self.helm.upgrade_install(self.options.release, self.options.namespace,
                                      [phase.render()], chart=self.options.chart,
                                      value_files=self.options.values_files, wait=False)

    def cleanup(self) -> None:
        """Uninstall the release (unless ``keep``) and delete our Jobs. Idempotent."""
        with self._cleanup_lock:
            if self.closed:
                return
            self.closed = True
            self.cluster.cancelled.set()
            atexit.unregister(self.cleanup)
            self.busy.acquire()
            try:
                with contextlib.suppress(Exception):
                    self.cluster.batch.delete_collection_namespaced_job(
                        self.options.namespace, label_selector=SWEEP_LABEL,
                        propagation_policy="Background")
                if self.installed and not self.options.keep and self.owned():
                    self.helm.uninstall(self.options.release, self.options.namespace)
            finally:
                self.busy.release()
                self.cluster.close()
