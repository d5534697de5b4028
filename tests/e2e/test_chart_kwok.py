"""The chart installed by the real helm into the kwok cluster (real kube-apiserver, RBAC,
controllers and default kube-scheduler; fake nodes).

Asserts what a cluster can tell and a render cannot: the objects are accepted by the
API server, the default scheduler places every producer, the RBAC grants what each
component needs and nothing more (checked with `kubectl auth can-i`), and the
Job-based `helm test` completes.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from typing import Any

import pytest

from harness.backends.k8s import K8sBinaries, KwokCluster
from harness.backends.kubernetes import Helm
from settlers.economy import load_economy

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ECONOMY = load_economy()


@pytest.fixture
def helm(kwok_cluster: KwokCluster, k8s_binaries: K8sBinaries) -> Helm:
    return Helm(binary=k8s_binaries.helm, kubeconfig=kwok_cluster.kubeconfig, timeout_s=300)


def can_i(
    cluster: KwokCluster,
    namespace: str,
    sa: str,
    verb: str,
    resource: str,
    where: str | None = None,
    subresource: str | None = None,
) -> bool:
    """`kubectl auth can-i` as a service account: the real authorizer's answer.
    ``resource`` may be TYPE/NAME (one object)."""
    args = [
        str(cluster.bins.kubectl),
        "--kubeconfig",
        str(cluster.kubeconfig),
        "auth",
        "can-i",
        verb,
        resource,
        f"--as=system:serviceaccount:{namespace}:{sa}",
    ]
    if subresource:
        args.append(f"--subresource={subresource}")
    args += ["-n", where] if where else ["--all-namespaces"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    answer = proc.stdout.strip()
    assert answer in ("yes", "no"), proc.stderr
    return answer == "yes"


def test_install_places_producers_and_grants_least_privilege(
    kwok_cluster: KwokCluster, namespace: str, helm: Helm
) -> None:
    release = f"tb{uuid.uuid4().hex[:4]}"
    out = helm.upgrade_install(
        release,
        namespace,
        [
            {
                "netmarks": {"enabled": True},
                "firmament": {"enabled": True},
                "orderApp": {"enabled": True},
            }
        ],
        wait=True,
        timeout="3m",
    )
    # NOTES.txt tells how to send an order and run the harness.
    assert f"helm test {release} -n {namespace}" in out
    assert "harness run --backend kubernetes" in out
    apps: Any = kwok_cluster.apps_v1()
    core: Any = kwok_cluster.core_v1()
    full = f"{release}-settlers-testbed"

    deps = {d.metadata.name: d for d in apps.list_namespaced_deployment(namespace).items}
    assert set(ECONOMY.names) | {
        f"{full}-netmarks-extender",
        f"{full}-netmarks-scheduler",
        f"{full}-firmament",
    } == set(deps)
    svcs = {s.metadata.name for s in core.list_namespaced_service(namespace).items}
    assert set(ECONOMY.names) <= svcs

    # The default scheduler placed every producer on a kwok node.
    pods = core.list_namespaced_pod(
        namespace,
        label_selector=f"app.kubernetes.io/instance={release},app.kubernetes.io/component=producer",
    ).items
    assert len(pods) == len(ECONOMY)
    assert all(p.spec.scheduler_name == "default-scheduler" for p in pods)
    assert {p.spec.node_name for p in pods} <= set(kwok_cluster.node_names)

    # The order-app Job is a post-install hook: helm waited for it (kwok runs its fake
    # pod to completion) and kept it, under a name without the revision.
    from kubernetes import client

    batch = client.BatchV1Api(kwok_cluster.api_client())
    assert batch.read_namespaced_job_status(f"{full}-order-app", namespace).status.succeeded

    # RBAC, asked of the real authorizer.
    ext, sched, firm = (
        f"{full}-netmarks-extender",
        f"{full}-netmarks-scheduler",
        f"{full}-firmament",
    )
    # kwokctl starts the apiserver with --authorization-mode=Node,RBAC, so a denial here
    # proves the checks below are answered by RBAC and not by an allow-all authorizer.
    assert not can_i(kwok_cluster, namespace, full, "delete", "nodes")
    # The extender: its namespace's pods only, bindings there (bindVerb), no nodes.
    assert can_i(kwok_cluster, namespace, ext, "watch", "pods", namespace)
    assert not can_i(kwok_cluster, namespace, ext, "watch", "pods")  # cluster-wide
    assert can_i(kwok_cluster, namespace, ext, "create", "bindings", namespace)
    assert not can_i(kwok_cluster, namespace, ext, "list", "nodes")
    assert not can_i(kwok_cluster, namespace, ext, "delete", "pods", namespace)
    # firmament binds with POST /api/v1/namespaces/NS/bindings (create_namespaced_binding),
    # which RBAC authorises as `bindings`, in any namespace its pods are in.
    assert can_i(kwok_cluster, namespace, firm, "create", "bindings", namespace)
    assert can_i(kwok_cluster, namespace, firm, "create", "bindings")
    assert not can_i(kwok_cluster, namespace, firm, "create", "events", namespace)
    assert not can_i(kwok_cluster, namespace, firm, "update", "deployments")
    assert can_i(kwok_cluster, namespace, sched, "create", "pods", subresource="binding")
    assert can_i(kwok_cluster, namespace, sched, "update", "leases/netmarks-scheduler", namespace)
    for sa in (full, ext, sched, firm):
        assert not can_i(kwok_cluster, namespace, sa, "get", "secrets"), sa
        assert not can_i(kwok_cluster, namespace, sa, "create", "clusterrolebindings"), sa
    # The producers' account has no rights at all.
    assert not can_i(kwok_cluster, namespace, full, "list", "pods")

    helm.uninstall(release, namespace)
    assert not apps.list_namespaced_deployment(namespace).items


def test_helm_test_job_completes(kwok_cluster: KwokCluster, namespace: str, helm: Helm) -> None:
    release = f"tt{uuid.uuid4().hex[:4]}"
    helm.upgrade_install(release, namespace, [{"protocol": "grpc"}], wait=True, timeout="3m")
    out = helm.test(release, namespace, timeout="2m")
    assert "Phase:          Succeeded" in out or "Succeeded" in out
    helm.uninstall(release, namespace)


def test_a_pinned_pod_that_cannot_go_to_its_node_is_pending_visibly(
    kwok_cluster: KwokCluster, namespace: str, helm: Helm
) -> None:
    """Pinning is a required node affinity: the default scheduler reports a pod that
    cannot go to its node (here: no such node) as Unschedulable, with the reason, where
    spec.nodeName would have skipped the scheduler and failed at the kubelet."""
    release = f"tp{uuid.uuid4().hex[:4]}"
    economy = {"items": {"ore": {}, "metal": {"inputs": {"ore": 1}}}}
    helm.upgrade_install(release, namespace, [{
        "economy": economy,
        "items": {"ore": {"nodes": [kwok_cluster.node_names[0]]},
                  "metal": {"nodes": ["no-such-node"]}}}], wait=False)
    core: Any = kwok_cluster.core_v1()
    deadline = time.monotonic() + 120

    def pods() -> dict[str, Any]:
        items = core.list_namespaced_pod(namespace, label_selector=(
            f"app.kubernetes.io/instance={release},app.kubernetes.io/component=producer")).items
        return {p.metadata.labels["app"]: p for p in items}

    while True:
        now = pods()
        conditions = {c.type: c for c in (now["metal"].status.conditions or [])} if (
            "metal" in now) else {}
        scheduled = conditions.get("PodScheduled")
        if ("ore" in now and now["ore"].spec.node_name and scheduled is not None
                and scheduled.reason == "Unschedulable"):
            break
        assert time.monotonic() < deadline, f"not placed/refused in time: {now}"
        time.sleep(0.5)
    assert now["ore"].spec.node_name == kwok_cluster.node_names[0]
    assert not now["metal"].spec.node_name and now["metal"].status.phase == "Pending"
    assert "NodeAffinity" in (scheduled.message or "")
    helm.uninstall(release, namespace)


def test_a_bad_value_is_refused_before_anything_is_created(
    kwok_cluster: KwokCluster, namespace: str, helm: Helm
) -> None:
    from harness.backends.kubernetes import HelmError

    with pytest.raises(HelmError, match="value must be one of 'http', 'grpc'"):
        helm.upgrade_install("bad", namespace, [{"protocol": "ftp"}], wait=False)
    assert not kwok_cluster.apps_v1().list_namespaced_deployment(namespace).items
