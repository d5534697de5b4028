"""The kubernetes backend installs a release of its own and touches no other: its
name, the ownership check before the first install and before uninstalling, the
order Job's log read from its named container, and pinned pods that do not fit."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from harness.backends.kubernetes import KubernetesOptions, PhaseValues
from harness.backends.kubernetes.cluster import ClusterError
from harness.backends.kubernetes.options import HARNESS_OWNER, harness_release_name
from harness.backends.kubernetes.orders import CONTAINER, wait_job
from harness.backends.kubernetes.release import Release
from settlers.economy import load_economy


def test_the_release_is_named_apart_from_a_users() -> None:
    opts = KubernetesOptions(namespace="bench")
    assert opts.release == harness_release_name("bench") != "settlers"
    assert opts.release.startswith("settlers-harness-")
    # The same name on every run in a namespace (it can take over its own leftover).
    assert KubernetesOptions(namespace="bench").release == opts.release
    assert KubernetesOptions(namespace="other").release != opts.release
    assert KubernetesOptions(namespace="bench", release="mine").release == "mine"


def test_kube_release_reaches_the_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.backends.kubernetes.options import options_for
    from results.config import ExperimentConfig

    monkeypatch.delenv("SETTLERS_KUBE_RELEASE", raising=False)
    config = ExperimentConfig(kube_namespace="bench", kube_release="exp-1")
    assert options_for(config).release == "exp-1"
    assert options_for(ExperimentConfig(kube_namespace="bench")).release == (
        harness_release_name("bench"))


def test_phase_values_mark_the_release_as_the_harness() -> None:
    assert PhaseValues(economy=load_economy()).render()["managedBy"] == HARNESS_OWNER


@dataclass
class FakeHelm:
    releases: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> values
    charts: dict[str, str] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def list_releases(self, namespace: str) -> list[dict[str, Any]]:
        return [{"name": n, "chart": self.charts.get(n, "settlers-testbed-0.1.0")}
                for n in self.releases]

    def get_values(self, release: str, namespace: str) -> dict[str, Any]:
        if release not in self.releases:
            raise RuntimeError(f"release: not found: {release}")
        return self.releases[release]

    def upgrade_install(self, release: str, *args: Any, **kw: Any) -> str:
        self.calls.append(f"install {release}")
        self.releases[release] = {"managedBy": HARNESS_OWNER}
        return ""

    def uninstall(self, release: str, namespace: str) -> str:
        self.calls.append(f"uninstall {release}")
        return ""


def _release(helm: FakeHelm, **opts: Any) -> Release:
    """A Release without a cluster: only what install/cleanup use."""
    rel = Release.__new__(Release)
    rel.economy = load_economy()
    rel.options = KubernetesOptions(namespace="bench", **opts)
    rel.helm = helm  # type: ignore[assignment]
    rel.cluster = SimpleNamespace(  # type: ignore[assignment]
        cancelled=threading.Event(), close=lambda: None,
        batch=SimpleNamespace(delete_collection_namespaced_job=lambda *a, **k: None))
    rel.installed = rel.closed = False
    rel._cleanup_lock = threading.Lock()
    rel.busy = threading.RLock()
    return rel


def test_a_users_release_in_the_namespace_is_never_touched() -> None:
    helm = FakeHelm(releases={"settlers": {"image": {"tag": "x"}}})
    rel = _release(helm)
    with pytest.raises(ClusterError, match=r"'settlers'.*did not install"):
        rel.install(rel.phase())
    rel.cleanup()
    assert helm.calls == []  # neither installed nor uninstalled anything


def test_a_users_release_under_the_chosen_name_is_refused() -> None:
    helm = FakeHelm(releases={"mine": {}})
    rel = _release(helm, release="mine")
    with pytest.raises(ClusterError, match="did not install"):
        rel.install(rel.phase())
    other = FakeHelm(releases={"mine": {}}, charts={"mine": "redis-1.0"})
    with pytest.raises(ClusterError, match="of another chart"):
        _release(other, release="mine").install(rel.phase())
    assert helm.calls == other.calls == []


def test_its_own_release_is_installed_taken_over_and_uninstalled() -> None:
    helm = FakeHelm(releases={harness_release_name("bench"): {"managedBy": HARNESS_OWNER},
                              "unrelated": {}},
                    charts={"unrelated": "redis-1.0"})
    rel = _release(helm)
    rel.install(rel.phase())
    rel.install(rel.phase())  # checked once, before the first install
    rel.cleanup()
    name = harness_release_name("bench")
    assert helm.calls == [f"install {name}", f"install {name}", f"uninstall {name}"]


def test_cleanup_leaves_a_release_without_the_mark() -> None:
    # E.g. the install failed before helm stored anything, or someone replaced it.
    helm = FakeHelm()
    rel = _release(helm)
    rel.installed = True
    rel.cleanup()
    assert helm.calls == []


def test_the_order_job_log_is_read_from_the_order_app_container() -> None:
    read: list[dict[str, Any]] = []
    pod = SimpleNamespace(metadata=SimpleNamespace(name="job-abc", creation_timestamp=1),
                          spec=SimpleNamespace(node_name="n1"))
    core = SimpleNamespace(
        list_namespaced_pod=lambda ns, label_selector: SimpleNamespace(items=[pod]),
        read_namespaced_pod_log=lambda name, ns, **kw: read.append(kw) or "log")
    batch = SimpleNamespace(read_namespaced_job_status=lambda name, ns: SimpleNamespace(
        status=SimpleNamespace(succeeded=1, failed=None, active=0)))
    assert wait_job(batch, core, "bench", "job", timeout_s=5) == "log"
    assert read == [{"container": CONTAINER}] and CONTAINER == "order-app"


def test_the_report_says_when_in_cluster_netmarks_saw_no_traffic() -> None:
    from harness.backends.kubernetes.placer import KubernetesPlacer
    from schedulers.model import Node

    release: Any = SimpleNamespace(
        economy=load_economy(), nodes=[Node(name="n1", cpu_m=4000, memory=2**33)],
        options=KubernetesOptions(namespace="bench", schedulers="chart"))
    placer = KubernetesPlacer(release)
    before = placer.traffic_description("netmarks", None)
    assert before.startswith("in-cluster NetMARKS extender: Prometheus at the chart's")
    assert "WARNING" not in before
    placer.extender_warnings["netmarks"] = "WARNING: the in-cluster NetMARKS extender saw no"
    after = placer.traffic_description("netmarks", None)
    assert after == f"{before}. WARNING: the in-cluster NetMARKS extender saw no"
    # Other schedulers are not affected.
    assert "WARNING" not in placer.traffic_description("firmament", None)


def test_the_extender_status_is_read_from_the_newest_extender_pod() -> None:
    from harness.backends.kubernetes.extstatus import read_extender_status

    asked: list[tuple[str, str]] = []
    old = SimpleNamespace(metadata=SimpleNamespace(name="ext-old", creation_timestamp=1))
    new = SimpleNamespace(metadata=SimpleNamespace(name="ext-new", creation_timestamp=2))

    def log(name: str, ns: str, container: str) -> str:
        asked.append((name, container))
        return 'x INFO schedulers.extender: netmarks-status {"traffic_seen": true, "pairs": 3}'

    core = SimpleNamespace(
        list_namespaced_pod=lambda ns, label_selector: SimpleNamespace(
            items=[old, new] if "instance=rel," in label_selector else []),
        read_namespaced_pod_log=log)
    assert read_extender_status(core, "bench", "rel") == {"traffic_seen": True, "pairs": 3}
    assert asked == [("ext-new", "extender")]
    assert read_extender_status(core, "bench", "other") is None
