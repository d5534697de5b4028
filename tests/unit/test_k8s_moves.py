"""`LiveDeployment` without a cluster: the pod-name mapping and what a failed move
leaves behind (the kwok e2e test, tests/e2e/test_kwok_moves.py, moves pods for real)."""

from __future__ import annotations

from types import SimpleNamespace as NS
from typing import Any
from unittest.mock import MagicMock

import pytest
from kubernetes.client.exceptions import ApiException

from harness.backends.k8s.moves import HELD_SCHEDULER, LiveDeployment

NAMES = {"flour-abc-1": "flour-0", "bread-def-1": "bread-0", "bread-def-2": "bread-3"}


def _fake_cluster(evict_error: ApiException | None = None) -> tuple[Any, list[tuple[str, Any]]]:
    """A cluster whose pods all belong to ReplicaSet <item>-rs of Deployment <item>;
    an evicted pod is gone at once and replaced by <item>-new; returns the cluster and
    the list of patches sent, in order."""
    patches: list[tuple[str, Any]] = []
    evicted: list[str] = []
    bound: dict[str, str] = {}
    core, apps = MagicMock(), MagicMock()

    def pod(name: str, ns: str = "live-1") -> NS:
        if name in evicted:
            raise ApiException(status=404)
        return NS(metadata=NS(name=name, deletion_timestamp=None, owner_references=[
            NS(kind="ReplicaSet", name=name.split("-")[0] + "-rs")]),
            spec=NS(node_name=bound.get(name)))

    core.read_namespaced_pod.side_effect = pod
    core.create_namespaced_pod_eviction.side_effect = lambda name, ns, body: evicted.append(name)
    core.list_namespaced_pod.side_effect = lambda ns: NS(items=[
        pod(n) for n in [*NAMES, *(f"{e.split('-')[0]}-new" for e in evicted)]
        if n not in evicted])
    core.create_namespaced_pod_binding.side_effect = (
        lambda name, ns, body, **kw: bound.update({name: body["target"]["name"]}) or MagicMock())
    apps.read_namespaced_replica_set.side_effect = lambda name, ns: NS(
        metadata=NS(owner_references=[NS(kind="Deployment", name=name[:-3])]),
        spec=NS(template=NS(spec=NS(scheduler_name="netmarks-scheduler"))))
    observed = NS(status=NS(observed_generation=2), metadata=NS(generation=2))
    apps.read_namespaced_deployment_status.return_value = observed
    apps.read_namespaced_replica_set_status.return_value = observed
    apps.patch_namespaced_deployment.side_effect = (
        lambda name, ns, body: patches.append((f"deployment/{name}", body)))
    apps.patch_namespaced_replica_set.side_effect = (
        lambda name, ns, body: patches.append((f"replicaset/{name}", body)))
    if evict_error is not None:
        core.create_namespaced_pod_eviction.side_effect = evict_error
    cluster = MagicMock()
    cluster.core_v1.return_value = core
    cluster.apps_v1.return_value = apps
    return cluster, patches


def test_names_map_both_ways_and_unknown_pods_are_named() -> None:
    live = LiveDeployment(MagicMock(), "live-1", NAMES)
    assert live.names == {"flour-0": "flour-abc-1", "bread-0": "bread-def-1",
                          "bread-3": "bread-def-2"}
    assert live.api_name("bread-3") == "bread-def-2"
    assert live.emulated_name("flour-abc-1") == "flour-0"
    with pytest.raises(KeyError, match="no pod 'bread-1' in live-1"):
        live.api_name("bread-1")


def test_a_replacement_takes_the_next_unused_index() -> None:
    cluster, patches = _fake_cluster()
    live = LiveDeployment(cluster, "live-1", NAMES, timeout=1)
    assert live.move("bread-0", "node-2") == ("bread-4", "node-2")  # bread-3 exists
    assert live.names == {"flour-0": "flour-abc-1", "bread-4": "bread-new",
                          "bread-3": "bread-def-2"}
    assert live.move("flour-0", "node-1") == ("flour-1", "node-1")
    assert [p[0] for p in patches].count("deployment/bread") == 2  # paused, resumed


def test_a_refused_eviction_leaves_the_deployment_as_it_was() -> None:
    # E.g. a PodDisruptionBudget: the Eviction API answers 429.
    cluster, patches = _fake_cluster(ApiException(status=429, reason="Too Many Requests"))
    live = LiveDeployment(cluster, "live-1", NAMES, timeout=1)
    with pytest.raises(ApiException):
        live.move("bread-0", "node-2")
    held = {"spec": {"template": {"spec": {"schedulerName": HELD_SCHEDULER}}}}
    restored = {"spec": {"template": {"spec": {"schedulerName": "netmarks-scheduler"}}}}
    assert patches == [
        ("deployment/bread", {"spec": {"paused": True}}),
        ("replicaset/bread-rs", held),
        ("replicaset/bread-rs", restored),
        ("deployment/bread", {"spec": {"paused": False}}),
    ]
    assert live.names == {v: k for k, v in NAMES.items()}  # nothing renamed
