"""Kubernetes JSON -> model, and the firmament scheduler loop against a fake API."""

from __future__ import annotations

from typing import Any

import pytest

from schedulers import TrafficMatrix, get_policy
from schedulers.firmament_k8s import FirmamentScheduler
from schedulers.k8s_json import node_from_json, pod_from_json, workload_of


def k8s_pod(name: str, app: str | None, *, node: str | None = None, scheduler: str = "firmament",
            cpu: str = "100m", ns: str = "default", phase: str = "Pending") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "uid": f"uid-{name}"}
    if app:
        meta["labels"] = {"app": app, "pod-template-hash": "5d8f7c9b6"}
    spec: dict[str, Any] = {"schedulerName": scheduler, "containers": [
        {"name": "main", "image": "settlers:dev",
         "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec,
            "status": {"phase": "Running" if node else phase}}


def k8s_node(name: str, cpu: str = "4", memory: str = "8Gi", ready: bool = True,
             taints: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  "type": "kwok"}},
            "spec": {"taints": taints or []},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
                       "conditions": [{"type": "Ready",
                                       "status": "True" if ready else "False"}]}}


def test_workload_falls_back_to_owner_and_name() -> None:
    assert workload_of(k8s_pod("flour-5d8f7c9b6-x2x9k", "flour")) == "flour"
    owned = k8s_pod("bread-6c7d8e9f0a-abcde", None)
    owned["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "name": "bread-6c7d8e9f0a"}]
    assert workload_of(owned) == "bread"
    assert workload_of(k8s_pod("coal-7b9c8d6f5-qwert", None)) == "coal"
    assert workload_of(k8s_pod("water-0", None)) == "water"
    assert workload_of(k8s_pod("flour-abc", "x"), label_key="tier") == "flour-abc"


def test_pod_and_node_json_to_model() -> None:
    raw = k8s_pod("p", "flour", cpu="250m")
    raw["spec"]["tolerations"] = [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]
    raw["spec"]["nodeSelector"] = {"disk": "ssd"}
    raw["spec"]["affinity"] = {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 7, "preference": {"matchExpressions": [
                {"key": "gen", "operator": "Exists"}]}}]}}
    pod = pod_from_json(raw)
    assert (pod.workload, pod.cpu_m, pod.memory) == ("flour", 250, 64 * 2**20)
    assert pod.tolerations[0].operator == "Exists"
    assert pod.matches_node_selection({"disk": "ssd", "zone": "a"})
    assert not pod.matches_node_selection({"disk": "ssd", "zone": "b"})
    assert pod.node_preferences[0].weight == 7
    node = node_from_json(k8s_node("n1", taints=[{"key": "t", "effect": "NoSchedule"}]))
    assert (node.cpu_m, node.memory, node.max_pods) == (4000, 8 * 2**30, 110)
    assert node.taints[0].key == "t" and node.labels["type"] == "kwok"


class FakeAPI:
    """The seam: lists and binds like the API server, records every bind."""

    def __init__(self, nodes: list[dict[str, Any]], pods: list[dict[str, Any]]) -> None:
        self.nodes = nodes
        self.pods = pods
        self.binds: list[tuple[str, str, str]] = []
        self.conflict: set[str] = set()

    def list_nodes(self) -> list[dict[str, Any]]:
        return self.nodes

    def list_pods(self, field_selector: str = "") -> list[dict[str, Any]]:
        return self.pods  # the selector is a hint; the scheduler filters anyway

    def bind(self, namespace: str, pod: str, node: str) -> None:
        if pod in self.conflict:
            raise RuntimeError("409 Conflict: pod already assigned")
        self.binds.append((namespace, pod, node))
        for p in self.pods:
            if p["metadata"]["name"] == pod and p["metadata"]["namespace"] == namespace:
                p["spec"]["nodeName"] = node
                p["status"]["phase"] = "Running"


def test_one_round_binds_our_pending_pods_in_a_batch() -> None:
    traffic = TrafficMatrix({("bread", "flour"): 100.0})
    api = FakeAPI(
        [k8s_node("n1"), k8s_node("n2"), k8s_node("down", ready=False)],
        [k8s_pod("flour-0", "flour", node="n2"),
         k8s_pod("bread-0", "bread"),
         k8s_pod("water-0", "water", ns="other"),
         k8s_pod("beer-0", "beer", scheduler="default-scheduler"),
         k8s_pod("huge-0", "huge", cpu="64")])
    sched = FirmamentScheduler(api, get_policy("firmament", traffic=traffic))
    report = sched.run_once()
    assert report.pending == 3
    bound = {f"{ns}/{p}": n for ns, p, n in api.binds}
    assert bound["default/bread-0"] == "n2"  # next to its input
    assert "other/water-0" in bound and "down" not in bound.values()
    assert report.unschedulable == ["default/huge-0"]
    # Nothing left: the next round binds nothing.
    assert sched.run_once().bound == []


def test_bind_conflicts_are_reported_not_fatal() -> None:
    api = FakeAPI([k8s_node("n1")], [k8s_pod("a-0", "a"), k8s_pod("b-0", "b")])
    api.conflict.add("a-0")
    report = FirmamentScheduler(api, get_policy("firmament")).run_once()
    assert [k for k, _ in report.failed] == ["default/a-0"]
    assert [k for k, _ in report.bound] == ["default/b-0"]


def test_concurrent_binds_keep_the_policy_order_and_report_conflicts() -> None:
    pods = [k8s_pod(f"w{i}-0", f"w{i}") for i in range(40)]
    api = FakeAPI([k8s_node("n1"), k8s_node("n2")], pods)
    api.conflict.add("w7-0")
    serial = FirmamentScheduler(FakeAPI([k8s_node("n1"), k8s_node("n2")],
                                        [k8s_pod(f"w{i}-0", f"w{i}") for i in range(40)]),
                                get_policy("firmament")).run_once()
    report = FirmamentScheduler(api, get_policy("firmament"), bind_workers=8).run_once()
    assert [k for k, _ in report.failed] == ["default/w7-0"]
    # The same placements in the same order as one bind at a time, minus the conflict.
    assert report.bound == [b for b in serial.bound if b[0] != "default/w7-0"]
    assert sorted(api.binds) == sorted(("default", k.split("/")[1], n) for k, n in report.bound)
    assert report.bind_s >= 0 and report.solve_s > 0 and report.list_s >= 0
    assert report.seconds >= report.list_s + report.solve_s


def test_an_api_that_binds_in_bulk_gets_the_whole_batch_in_order() -> None:
    class Bulk(FakeAPI):
        calls: list[tuple[int, int]]

        def bind_many(self, binds: list[tuple[str, str, str]], concurrency: int
                      ) -> list[str | None]:
            self.calls.append((len(binds), concurrency))
            out: list[str | None] = []
            for ns, pod, node in binds:
                try:
                    self.bind(ns, pod, node)
                    out.append(None)
                except RuntimeError as exc:
                    out.append(str(exc))
            return out

    api = Bulk([k8s_node("n1"), k8s_node("n2")], [k8s_pod(f"w{i}-0", f"w{i}") for i in range(5)])
    api.calls = []
    api.conflict.add("w3-0")
    report = FirmamentScheduler(api, get_policy("firmament"), bind_workers=4).run_once()
    assert api.calls == [(5, 4)]
    assert [k for k, _ in report.failed] == ["default/w3-0"]
    assert len(report.bound) == 4


def test_bind_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="bind_workers"):
        FirmamentScheduler(FakeAPI([], []), get_policy("firmament"), bind_workers=0)


def test_an_api_that_lists_names_alone_serves_the_settle_polls() -> None:
    class KeysOnly(FakeAPI):
        selectors: list[str]

        def list_pod_keys(self, field_selector: str = "") -> list[str]:
            self.selectors.append(field_selector)
            return ["default/a-0"]

    api = KeysOnly([k8s_node("n1")], [])
    api.selectors = []
    assert FirmamentScheduler(api, get_policy("firmament"))._pending_keys() == {"default/a-0"}
    assert api.selectors == ["spec.schedulerName=firmament,spec.nodeName=,"
                             "status.phase=Pending"]


def test_a_policy_factory_is_called_every_round() -> None:
    calls: list[int] = []

    def factory() -> Any:
        calls.append(1)
        return get_policy("firmament")

    api = FakeAPI([k8s_node("n1")], [k8s_pod("a-0", "a")])
    sched = FirmamentScheduler(api, factory)
    sched.run_once()
    api.pods.append(k8s_pod("b-0", "b"))
    sched.run_once()
    assert len(calls) == 2 and len(api.binds) == 2


class FakeClock:
    """Time that moves only when the scheduler sleeps; ``arrivals`` adds pods at set times."""

    def __init__(self, api: FakeAPI, arrivals: dict[float, list[dict[str, Any]]]) -> None:
        self.now = 0.0
        self.api = api
        self.arrivals = dict(arrivals)

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        for at in sorted(t for t in self.arrivals if t <= self.now):
            self.api.pods.extend(self.arrivals.pop(at))


def test_settle_waits_for_trickling_pods_then_one_round_binds_them_all() -> None:
    api = FakeAPI([k8s_node("n1"), k8s_node("n2")], [k8s_pod("flour-0", "flour")])
    clock = FakeClock(api, {0.2: [k8s_pod("bread-0", "bread")],
                            0.6: [k8s_pod("beer-0", "beer")]})
    sched = FirmamentScheduler(api, get_policy("firmament"), clock=lambda: clock.now,
                               sleep=clock.sleep)
    assert sched.settle(0.5, max_wait_s=10) == 3
    # The last pod came at 0.6 s; quiet for 0.5 s after it, and no longer.
    assert 1.1 <= clock.now < 1.2
    assert len(sched.run_once().bound) == 3


def test_settle_gives_up_at_max_wait_and_returns_at_once_with_nothing_pending() -> None:
    api = FakeAPI([k8s_node("n1")], [k8s_pod("a-0", "a")])
    steady = {round(0.1 * i, 1): [k8s_pod(f"b-{i}", "b")] for i in range(1, 100)}
    clock = FakeClock(api, steady)
    sched = FirmamentScheduler(api, get_policy("firmament"), clock=lambda: clock.now,
                               sleep=clock.sleep)
    assert sched.settle(0.5, max_wait_s=2.0) >= 15
    assert 2.0 <= clock.now < 2.1
    empty = FakeAPI([k8s_node("n1")], [])
    idle = FakeClock(empty, {})
    assert FirmamentScheduler(empty, get_policy("firmament"), clock=lambda: idle.now,
                              sleep=idle.sleep).settle(0.5, 10) == 0
    assert idle.now == 0.0


@pytest.mark.cli
def test_cli_refuses_a_negative_settle_and_a_zero_interval() -> None:
    from typer.testing import CliRunner

    from schedulers.cli import app

    runner = CliRunner()
    for args, option in ((["--settle", "-1"], "--settle"), (["--interval", "0"], "--interval")):
        result = runner.invoke(app, ["firmament", *args])
        assert result.exit_code == 2
        assert option in result.output and "greater than or equal" in result.output
