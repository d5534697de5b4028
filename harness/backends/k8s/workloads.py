"""Deployments on a kwok cluster: create them, wait until their pods are bound, read back
where they landed, and delete them.

kwok pods never run a container, so the image is a placeholder; what matters for the
schedulers is the pod's requests, labels, owner (a ReplicaSet, which gives the default
PodTopologySpread its selector) and ``schedulerName``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.backends.k8s.cluster import KwokCluster, KwokError

__all__ = [
    "DeploymentSpec",
    "bound_placement",
    "create_deployments",
    "delete_deployments",
    "delete_namespace",
    "deployment_manifest",
    "emulated_names",
    "unbound_message",
    "wait_bound",
]

APP_LABEL = "app"
PLACEHOLDER_IMAGE = "registry.k8s.io/pause:3.10"  # never pulled: kwok fakes the containers


@dataclass(frozen=True)
class DeploymentSpec:
    """One workload: ``name`` (an economy item), replicas and per-pod requests."""

    name: str
    replicas: int = 1
    cpu_m: int = 100
    memory: int = 128 * 2**20
    labels: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if self.replicas < 0:
            raise ValueError(f"{self.name}: replicas must be >= 0, got {self.replicas}")
        if self.cpu_m < 0 or self.memory < 0:
            raise ValueError(f"{self.name}: requests must be >= 0")


def deployment_manifest(spec: DeploymentSpec, scheduler_name: str) -> dict[str, Any]:
    labels = {APP_LABEL: spec.name, **(spec.labels or {})}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": spec.name, "labels": {APP_LABEL: spec.name}},
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": {APP_LABEL: spec.name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "schedulerName": scheduler_name,
                    "terminationGracePeriodSeconds": 0,
                    "containers": [
                        {
                            "name": spec.name,
                            "image": PLACEHOLDER_IMAGE,
                            "resources": {
                                "requests": {
                                    "cpu": f"{spec.cpu_m}m",
                                    "memory": str(spec.memory),
                                }
                            },
                        }
                    ],
                },
            },
        },
    }


def create_deployments(
    cluster: KwokCluster,
    namespace: str,
    specs: Iterable[DeploymentSpec],
    scheduler_name: str = "default-scheduler",
) -> None:
    """Create the Deployments in the given order (their pods arrive roughly in it)."""
    apps = cluster.apps_v1()
    for spec in specs:
        apps.create_namespaced_deployment(namespace, deployment_manifest(spec, scheduler_name))


def _pods(cluster: KwokCluster, namespace: str) -> list[Any]:
    return list(cluster.core_v1().list_namespaced_pod(namespace).items)


def wait_bound(
    cluster: KwokCluster, namespace: str, expected: int, timeout: float = 60.0
) -> list[Any]:
    """Wait until `expected` live pods exist in `namespace` and all have a node."""
    deadline = time.monotonic() + timeout
    pods: list[Any] = []
    while time.monotonic() < deadline:
        pods = [p for p in _pods(cluster, namespace) if p.metadata.deletion_timestamp is None]
        if len(pods) == expected and all(p.spec.node_name for p in pods):
            return pods
        time.sleep(0.05)
    raise KwokError(unbound_message(namespace, pods, expected, timeout))


def unbound_message(namespace: str, pods: Sequence[Any], expected: int, timeout: float) -> str:
    """Why `wait_bound` gave up; when no pod got a node, the likely cause in words."""
    unbound = sorted(p.metadata.name for p in pods if not p.spec.node_name)
    text = (f"{namespace}: {len(pods)}/{expected} pods exist after {timeout:.0f} s; "
            f"unbound: {', '.join(unbound) or 'none'}")
    refused = _unschedulable(pods)
    if refused:
        # The scheduler ran and found no node (e.g. Diktyo's filter on a cluster without
        # zone labels): its own words, not a guess.
        return f"{text}; the scheduler found no node for {refused}"
    if pods and len(unbound) == len(pods):
        names = ", ".join(sorted({str(p.spec.scheduler_name) for p in pods}))
        text = (f"nobody bound pods with schedulerName {names} in {timeout:.0f} s: is your "
                f"scheduler running? ({text})")
    return text


def _unschedulable(pods: Sequence[Any]) -> str | None:
    """"<pod>: <message>" of the first unbound pod the scheduler marked Unschedulable."""
    for p in pods:
        if p.spec.node_name:
            continue
        status = getattr(p, "status", None)
        for c in getattr(status, "conditions", None) or []:
            if c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable":
                return f"{p.metadata.name}: {c.message}"
    return None


def emulated_names(pods: Iterable[Any]) -> dict[str, str]:
    """API pod name -> ``<app>-<index>`` (index by creation time, then name within the
    app), the names the emulated cluster and the Python schedulers use."""
    by_app: dict[str, list[Any]] = defaultdict(list)
    for p in pods:
        by_app[(p.metadata.labels or {}).get(APP_LABEL, p.metadata.name)].append(p)
    out: dict[str, str] = {}
    for app, group in sorted(by_app.items()):
        group.sort(key=lambda p: (p.metadata.creation_timestamp, p.metadata.name))
        for i, p in enumerate(group):
            out[p.metadata.name] = f"{app}-{i}"
    return out


def bound_placement(pods: Iterable[Any]) -> dict[str, str]:
    """Pod -> node with pods renamed as `emulated_names` does (in its order: by app,
    then index)."""
    pods = list(pods)
    node = {p.metadata.name: p.spec.node_name for p in pods}
    return {name: node[api] for api, name in emulated_names(pods).items()}


def _delete_owners_then_pods(cluster: KwokCluster, namespace: str) -> None:
    # Deleting the ReplicaSets and pods directly (grace 0) instead of waiting for the
    # garbage collector saves most of the time; owners first, so nothing is recreated.
    apps = cluster.apps_v1()
    apps.delete_collection_namespaced_deployment(namespace, propagation_policy="Background")
    apps.delete_collection_namespaced_replica_set(namespace, propagation_policy="Background")
    cluster.core_v1().delete_collection_namespaced_pod(namespace, grace_period_seconds=0)


def _wait_no_pods(cluster: KwokCluster, namespace: str, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pods(cluster, namespace):
            return
        time.sleep(0.05)
    raise KwokError(f"{namespace}: pods still present {timeout:.0f} s after {what}")


def delete_deployments(cluster: KwokCluster, namespace: str, timeout: float = 60.0) -> None:
    """Delete every Deployment in `namespace` and wait until its pods are gone."""
    _delete_owners_then_pods(cluster, namespace)
    _wait_no_pods(cluster, namespace, timeout, "deleting the deployments")


def delete_namespace(cluster: KwokCluster, namespace: str, timeout: float = 60.0) -> None:
    """Delete `namespace` and wait until none of its pods is left on a node (the
    namespace object itself finishes terminating in the background)."""
    _delete_owners_then_pods(cluster, namespace)
    cluster.core_v1().delete_namespace(namespace)
    # Pods of other owners (Jobs, StatefulSets) go with the namespace; hurry them too.
    cluster.core_v1().delete_collection_namespaced_pod(namespace, grace_period_seconds=0)
    _wait_no_pods(cluster, namespace, timeout, "deleting the namespace")
