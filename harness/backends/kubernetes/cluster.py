"""What the kubernetes backend reads and changes through the API: nodes, the release's
producer Deployments and pods.

Synchronous (the official client is); the backend calls it from a worker thread.
Every wait has a deadline and, on timeout, says which pods are stuck and why the
API thinks so (e.g. no scheduler with that name is running).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schedulers.model import Node, Taint
from settlers.quantity import parse_cpu, parse_memory

__all__ = ["ClusterError", "KubeCluster", "RolloutResult"]

PRODUCER_SELECTOR = "app.kubernetes.io/component=producer"


class ClusterError(RuntimeError):
    """The cluster did not reach the wanted state; the message says which pods and why."""


@dataclass(frozen=True)
class RolloutResult:
    """The producer pods after a (re)deployment: pod objects and the wall time it took."""

    pods: list[Any]
    seconds: float
    unschedulable: tuple[str, ...]


class KubeCluster:
    """One namespace of one cluster (kubeconfig + context), as the backend needs it."""

    def __init__(self, namespace: str, release: str, *, context: str | None = None,
                 kubeconfig: Path | None = None) -> None:
        from kubernetes import client, config

        self.namespace = namespace
        self.release = release
        # Set by the backend's cleanup: waits in worker threads stop at once instead of
        # running into their timeout after a Ctrl-C.
        self.cancelled = threading.Event()
        self.api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=None if kubeconfig is None else str(kubeconfig), context=context)
        self.core: Any = client.CoreV1Api(self.api_client)
        self.apps: Any = client.AppsV1Api(self.api_client)
        self.batch: Any = client.BatchV1Api(self.api_client)
        self._version: Any = client.VersionApi(self.api_client)

    def close(self) -> None:
        self.api_client.close()

    @property
    def selector(self) -> str:
        return f"app.kubernetes.io/instance={self.release},{PRODUCER_SELECTOR}"

    def server_version(self) -> str:
        """``1.36.3`` (vendor suffixes dropped), for ``helm template --kube-version``."""
        info = self._version.get_code()
        return str(info.git_version).lstrip("v").split("-")[0].split("+")[0]

    # -- nodes --------------------------------------------------------------------------
    def schedulable_nodes(self, names: list[str] | None = None) -> list[Node]:
        """Ready nodes pods can land on: not cordoned, no NoSchedule/NoExecute taint
        (control-plane nodes), or exactly ``names`` when given."""
        out = []
        for n in self.core.list_node().items:
            node = _to_node(n)
            if names is not None:
                if node.name in names:
                    out.append(node)
                continue
            ready = any(c.type == "Ready" and c.status == "True"
                        for c in (n.status.conditions or []))
            hard = any(t.effect in ("NoSchedule", "NoExecute") for t in node.taints)
            if ready and not node.unschedulable and not hard:
                out.append(node)
        if names is not None and len(out) != len(set(names)):
            missing = sorted(set(names) - {n.name for n in out})
            raise ClusterError(f"nodes not in the cluster: {', '.join(missing)}")
        if not out:
            raise ClusterError("the cluster has no Ready, schedulable node without taints")
        return sorted(out, key=lambda node: node.name)

    def nodes_are_fake(self, names: list[str]) -> bool:
        """True when every named node is a kwok node (no kubelet, containers never run)."""
        fake = {n.metadata.name for n in self.core.list_node().items
                if (n.metadata.annotations or {}).get("kwok.x-k8s.io/node") == "fake"
                or (n.metadata.labels or {}).get("type") == "kwok"}
        return bool(names) and set(names) <= fake

    # -- producers ----------------------------------------------------------------------
    def producer_pods(self) -> list[Any]:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=self.selector).items
        return [p for p in pods if p.metadata.deletion_timestamp is None]

    def scale_producers(self, replicas: Mapping[str, int]) -> None:
        """Set the replicas of each named producer Deployment (all at once: one by one,
        19 patches take over a second on a busy control plane). The patches start in
        ``replicas``' order (the creation order), 8 at a time, so the order holds only
        roughly."""
        def scale(item: tuple[str, int]) -> None:
            self.apps.patch_namespaced_deployment_scale(
                item[0], self.namespace, {"spec": {"replicas": item[1]}})

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(scale, replicas.items()))

    def delete_producer_pods(self, timeout_s: float) -> None:
        """Delete the producer pods now (grace 0): used between placement rounds, where
        no order is in flight and a graceful stop would only add its grace period.

        Waits first until every producer ReplicaSet wants 0 pods, or it would
        recreate what is deleted here."""
        deadline = time.monotonic() + timeout_s
        while any(rs.spec.replicas for rs in self.apps.list_namespaced_replica_set(
                self.namespace, label_selector=self.selector).items):
            if time.monotonic() > deadline:
                raise ClusterError(f"producer ReplicaSets not scaled to 0 after {timeout_s:.0f} s")
            self._pause()
        self.core.delete_collection_namespaced_pod(
            self.namespace, label_selector=self.selector, grace_period_seconds=0)

    def wait_no_producers(self, timeout_s: float) -> None:
        """Wait until every producer pod is gone (even terminating ones hold resources)."""
        deadline = time.monotonic() + timeout_s
        while True:
            pods = self.core.list_namespaced_pod(self.namespace,
                                                 label_selector=self.selector).items
            if not pods:
                return
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"{len(pods)} producer pod(s) still exist {timeout_s:.0f} s after scaling "
                    f"to 0: {', '.join(sorted(p.metadata.name for p in pods)[:10])}")
            self._pause()

    def wait_placed(self, expected: int, timeout_s: float, *, ready: bool = False,
                    started: float | None = None) -> RolloutResult:
        """Wait until ``expected`` producer pods exist and each is bound (and Ready when
        ``ready``), or is reported Unschedulable. ``seconds`` counts from ``started``."""
        t0 = time.monotonic() if started is None else started
        deadline = t0 + timeout_s
        while True:
            pods = self.producer_pods()
            unschedulable = tuple(sorted(p.metadata.name for p in pods
                                         if not p.spec.node_name and _unschedulable(p)))
            settled = [p for p in pods if (_is_ready(p) if ready else p.spec.node_name)]
            if len(pods) == expected and len(settled) + len(unschedulable) == expected:
                return RolloutResult(pods, time.monotonic() - t0, unschedulable)
            if time.monotonic() > deadline:
                raise ClusterError(self._stuck_message(pods, expected, timeout_s, ready))
            self._pause()

    def _stuck_message(self, pods: list[Any], expected: int, timeout_s: float,
                       ready: bool) -> str:
        waiting = [p for p in pods if not (_is_ready(p) if ready else p.spec.node_name)]
        lines = [f"{len(pods)}/{expected} producer pods exist in {self.namespace}, "
                 f"{len(waiting)} not {'ready' if ready else 'placed'} after {timeout_s:.0f} s:"]
        for p in waiting[:8]:
            why = "; ".join(f"{c.type}={c.status} {c.reason or ''} {c.message or ''}".strip()
                            for c in (p.status.conditions or []))
            lines.append(f"  {p.metadata.name} (schedulerName {p.spec.scheduler_name}, node "
                         f"{p.spec.node_name or '-'}): {why or 'no conditions yet'}")
        if pods and not any(p.spec.node_name for p in pods):
            names = ", ".join(sorted({str(p.spec.scheduler_name) for p in pods}))
            lines.insert(0, f"nobody bound pods with schedulerName {names} in "
                            f"{timeout_s:.0f} s: is your scheduler running?")
        elif any(not p.spec.node_name and not p.status.conditions for p in waiting):
            lines.append("  pods without any condition: is a scheduler with that "
                         "schedulerName running?")
        return "\n".join(lines)


    def _pause(self) -> None:
        if self.cancelled.wait(0.1):
            raise ClusterError("cancelled: the backend is shutting down")


def _to_node(n: Any) -> Node:
    alloc = n.status.allocatable or {}
    return Node(
        name=n.metadata.name,
        cpu_m=parse_cpu(alloc.get("cpu", "0")),
        memory=parse_memory(alloc.get("memory", "0")),
        max_pods=int(alloc.get("pods", "110")),
        labels=dict(n.metadata.labels or {}),
        taints=[Taint(key=t.key, value=t.value or "", effect=t.effect)
                for t in (n.spec.taints or [])],
        unschedulable=bool(n.spec.unschedulable),
    )


def _unschedulable(pod: Any) -> bool:
    return any(c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
               for c in (pod.status.conditions or []))


def _is_ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))
