"""The kwok control plane itself: real binaries up, kwok nodes Ready, the real
kube-scheduler placing a Deployment's pods, and a clean teardown."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from harness.backends.k8s import K8sBinaries, KwokCluster
from harness.backends.k8s.cluster import create_args, kwokctl_env, write_kwokctl_config
from harness.backends.k8s.workloads import (
    DeploymentSpec,
    create_deployments,
    delete_deployments,
    wait_bound,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_dry_run_uses_only_local_binaries_and_loopback(
    k8s_binaries: K8sBinaries, tmp_path: Path
) -> None:
    args = create_args(k8s_binaries, "dry", write_kwokctl_config(tmp_path))
    proc = subprocess.run(
        [args[0], "--dry-run", *args[1:]],
        env=kwokctl_env(k8s_binaries, tmp_path, {}),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    plan = proc.stdout + proc.stderr
    fetched = re.findall(r"# Download (\S+) to", plan)
    assert len(fetched) == 5, plan
    for src in fetched:
        assert src.startswith(str(k8s_binaries.dir)), f"kwokctl would fetch {src}"
    assert "0.0.0.0" not in plan, "every component must bind to loopback only"
    addresses = set(re.findall(r"(?:https?://)?(\d+\.\d+\.\d+\.\d+):\d+", plan))
    assert addresses == {"127.0.0.1"}, addresses


def test_nodes_ready_with_capacity_and_labels(kwok_cluster: KwokCluster) -> None:
    nodes = kwok_cluster.core_v1().list_node().items
    assert sorted(n.metadata.name for n in nodes) == [f"node-{i}" for i in range(1, 6)]
    for n in nodes:
        assert n.status.allocatable["cpu"] == "4"
        assert n.status.allocatable["memory"] == "8Gi"
        assert n.metadata.labels["kubernetes.io/hostname"] == n.metadata.name
        ready = [c for c in n.status.conditions if c.type == "Ready"]
        assert ready and ready[0].status == "True"


def test_server_reports_pinned_version(kwok_cluster: KwokCluster) -> None:
    from kubernetes import client

    info: Any = client.VersionApi(kwok_cluster.api_client()).get_code()
    want = kwok_cluster.bins.versions().get("kubernetes")
    assert want, "tools/k8s/build writes VERSIONS"
    assert info.git_version == want
    assert kwok_cluster.server.startswith("https://127.0.0.1:")


def test_default_scheduler_places_deployment_pods_running(
    kwok_cluster: KwokCluster, namespace: str
) -> None:
    create_deployments(kwok_cluster, namespace, [DeploymentSpec("web", replicas=10, cpu_m=500)])
    pods = wait_bound(kwok_cluster, namespace, 10, timeout=60)
    nodes = {p.spec.node_name for p in pods}
    # 10 pods x 0.5 CPU on 5 nodes of 4 CPU: LeastAllocated + spreading use every node.
    assert nodes == set(kwok_cluster.node_names)

    core = kwok_cluster.core_v1()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        phases = {p.status.phase for p in core.list_namespaced_pod(namespace).items}
        if phases == {"Running"}:
            break
        time.sleep(0.2)
    assert phases == {"Running"}

    events = core.list_namespaced_event(namespace).items
    scheduled = [e for e in events if e.reason == "Scheduled"]
    assert len(scheduled) >= 10
    assert all(
        (e.reporting_component or e.source.component) == "default-scheduler" for e in scheduled
    )
    delete_deployments(kwok_cluster, namespace)
    assert core.list_namespaced_pod(namespace).items == []


def test_unschedulable_pod_stays_pending(kwok_cluster: KwokCluster, namespace: str) -> None:
    create_deployments(kwok_cluster, namespace, [DeploymentSpec("huge", cpu_m=64000)])
    core = kwok_cluster.core_v1()
    deadline = time.monotonic() + 30
    reasons: set[str] = set()
    while time.monotonic() < deadline and "Unschedulable" not in reasons:
        for p in core.list_namespaced_pod(namespace).items:
            assert not p.spec.node_name
            reasons |= {c.reason for c in p.status.conditions or [] if c.reason}
        time.sleep(0.2)
    assert "Unschedulable" in reasons


def _running(pid: int) -> bool:
    """True if `pid` exists and is not a zombie (an exited child waiting for init)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def test_stop_leaves_no_process_behind(k8s_binaries: K8sBinaries, tmp_path: Path) -> None:
    cluster = KwokCluster.start(nodes=1, workdir=tmp_path, bins=k8s_binaries)
    pids = cluster.pids()
    assert len(pids) >= 5  # etcd, apiserver, controller manager, scheduler, kwok
    cluster.stop()
    time.sleep(0.2)
    assert cluster.pids() == []
    assert not cluster.cluster_dir.exists()
    running = [p for p in pids if _running(p)]
    assert running == [], f"processes survived stop(): {running}"
    cluster.stop()  # idempotent


def test_start_failure_cleans_up(k8s_binaries: K8sBinaries, tmp_path: Path) -> None:
    bad = tmp_path / "sched.yaml"
    bad.write_text("apiVersion: kubescheduler.config.k8s.io/v1\nkind: Nonsense\n")
    with pytest.raises(Exception, match=r"(?i)kube-scheduler|nonsense|not ready|failed"):
        KwokCluster.start(
            nodes=1, workdir=tmp_path, bins=k8s_binaries, scheduler_config=bad, timeout=40
        )
    assert not list((tmp_path / "clusters").glob("*/pids/*.pid"))


def test_scheduler_config_file_is_used(k8s_binaries: K8sBinaries, tmp_path: Path) -> None:
    cfg = tmp_path / "sched.yaml"
    cfg.write_text(
        "apiVersion: kubescheduler.config.k8s.io/v1\n"
        "kind: KubeSchedulerConfiguration\n"
        "profiles:\n- schedulerName: custom-profile\n"
    )
    with KwokCluster.start(
        nodes=2, workdir=tmp_path / "w", bins=k8s_binaries, scheduler_config=cfg
    ) as cluster:
        cluster.core_v1().create_namespace({"metadata": {"name": "c"}})
        create_deployments(cluster, "c", [DeploymentSpec("x", replicas=3)], "custom-profile")
        pods = wait_bound(cluster, "c", 3, timeout=60)
        assert {p.spec.node_name for p in pods} <= {"node-1", "node-2"}
