"""Pure parts of the kwok backend: manifests, configs, binary lookup, pod renaming."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.backends.k8s import (
    K8sBinariesMissing,
    NodeSpec,
    binaries,
    extender_stanza,
    scheduler_config,
)
from harness.backends.k8s.binaries import BINARY_NAMES
from harness.backends.k8s.nodes import node_manifest, node_names
from harness.backends.k8s.workloads import (
    DeploymentSpec,
    bound_placement,
    deployment_manifest,
)


def test_node_manifest_capacity_labels_and_zones() -> None:
    spec = NodeSpec(cpu="8", memory="16Gi", pods=50, labels={"pool": "a"}, zones=("z1", "z2"))
    m = node_manifest("node-2", 1, spec)
    assert m["metadata"]["labels"]["kubernetes.io/hostname"] == "node-2"
    assert m["metadata"]["labels"]["pool"] == "a"
    assert m["metadata"]["labels"]["topology.kubernetes.io/zone"] == "z2"
    assert m["status"]["allocatable"] == {"cpu": "8", "memory": "16Gi", "pods": "50"}
    assert m["status"]["capacity"] == m["status"]["allocatable"]
    assert (
        "topology.kubernetes.io/zone" not in node_manifest("n", 0, NodeSpec())["metadata"]["labels"]
    )


def test_node_spec_and_names_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="pods per node"):
        NodeSpec(pods=0)
    with pytest.raises(ValueError, match="label key"):
        NodeSpec(labels={"a/b/c": "x"})
    with pytest.raises(ValueError, match="at least one node"):
        node_names(0)
    assert node_names(3) == ["node-1", "node-2", "node-3"]


def test_extender_stanza_and_scheduler_config() -> None:
    ext = extender_stanza("http://127.0.0.1:8888/", weight=5)
    assert ext["prioritizeVerb"] == "prioritize" and ext["weight"] == 5
    assert ext["nodeCacheCapable"] is True and "filterVerb" not in ext
    cfg = scheduler_config("netmarks-scheduler", Path("/k/config"), extenders=[ext])
    assert cfg["kind"] == "KubeSchedulerConfiguration"
    assert cfg["profiles"] == [{"schedulerName": "netmarks-scheduler"}]
    assert cfg["clientConnection"] == {"kubeconfig": "/k/config"}
    assert cfg["leaderElection"] == {"leaderElect": False}
    assert cfg["extenders"] == [ext]
    with pytest.raises(ValueError, match="weight"):
        extender_stanza("http://127.0.0.1:1/", weight=0)
    with pytest.raises(ValueError, match="loopback"):
        extender_stanza("http://10.0.0.1:1/")


def test_scheduler_config_client_connection_joins_the_kubeconfig() -> None:
    cfg = scheduler_config("default-scheduler", Path("/k/config"),
                           client_connection={"qps": 5000, "burst": 5000})
    assert cfg["clientConnection"] == {"kubeconfig": "/k/config", "qps": 5000, "burst": 5000}
    assert "clientConnection" not in scheduler_config("x")


def test_create_args_can_leave_out_the_kube_scheduler(tmp_path: Path) -> None:
    from harness.backends.k8s.binaries import K8sBinaries
    from harness.backends.k8s.cluster import create_args

    bins = K8sBinaries(tmp_path, *(tmp_path / n for n in (
        "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "etcd",
        "kwok", "kwokctl", "helm")))
    args = create_args(bins, "c", tmp_path / "cfg.yaml", disable=("kube-scheduler",))
    assert args[args.index("--disable") + 1] == "kube-scheduler"
    assert not any(a.startswith("kube-scheduler=") for a in args)
    assert "--disable" not in create_args(bins, "c", tmp_path / "cfg.yaml")


def test_deployment_manifest_carries_scheduler_and_requests() -> None:
    m = deployment_manifest(DeploymentSpec("flour", replicas=2, cpu_m=250, memory=2**20), "x")
    pod = m["spec"]["template"]["spec"]
    assert pod["schedulerName"] == "x"
    assert pod["containers"][0]["resources"]["requests"] == {"cpu": "250m", "memory": "1048576"}
    assert m["spec"]["selector"]["matchLabels"] == m["metadata"]["labels"] == {"app": "flour"}
    with pytest.raises(ValueError, match="replicas"):
        DeploymentSpec("x", replicas=-1)


def _pod(name: str, app: str, node: str, second: int) -> SimpleNamespace:
    ts = dt.datetime(2026, 1, 1, 0, 0, second)
    meta = SimpleNamespace(name=name, labels={"app": app}, creation_timestamp=ts)
    return SimpleNamespace(metadata=meta, spec=SimpleNamespace(node_name=node))


def test_bound_placement_renames_pods_by_creation_order() -> None:
    pods = [
        _pod("flour-abc-zzz", "flour", "node-1", 2),
        _pod("flour-abc-aaa", "flour", "node-2", 1),
        _pod("water-xyz-qqq", "water", "node-3", 0),
    ]
    assert bound_placement(pods) == {"flour-0": "node-2", "flour-1": "node-1", "water-0": "node-3"}


def test_binaries_missing_says_how_to_fix(tmp_path: Path) -> None:
    (tmp_path / "kubectl").write_text("#!/bin/sh\n")
    (tmp_path / "kubectl").chmod(0o755)
    with pytest.raises(K8sBinariesMissing, match=r"tools/k8s/build") as info:
        binaries(tmp_path)
    assert "kube-apiserver" in str(info.value) and "kubectl," not in str(info.value)


def test_binaries_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in BINARY_NAMES:
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    (tmp_path / "VERSIONS").write_text("kubernetes=v1.36.3\nkwok=v0.8.0\n")
    monkeypatch.setenv("SETTLERS_K8S_BIN", str(tmp_path))
    b = binaries()
    assert b.kube_apiserver == tmp_path.resolve() / "kube-apiserver"
    assert b.versions() == {"kubernetes": "v1.36.3", "kwok": "v0.8.0"}
