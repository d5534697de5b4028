"""The chart's `metrics.meshBytes` switch (producers export per-peer bytes under
Istio's names, for a cluster without a mesh), rendered by the real helm.

The workload names the pods are given must be the ones the readers expect: Istio's
(the Deployment's name, the Job's name), which `harness.backends.kubernetes.meshbytes`
maps back to items and nodes.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.backends.kubernetes import PhaseValues
from harness.backends.kubernetes.helm import Helm, HelmError
from harness.backends.kubernetes.meshbytes import Workloads
from settlers.economy import load_economy

Obj = dict[str, Any]

ECONOMY = load_economy()


def _env(container: Obj) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def _render(helm: Helm, mesh_bytes: bool | None, protocol: str = "http") -> list[Obj]:
    values: Obj = {"protocol": protocol, "orderApp": {"enabled": True},
                   "items": {"coal": {"nodes": ["node-1", "node-2", "node-2"]}}}
    if mesh_bytes is not None:
        values["metrics"] = {"meshBytes": mesh_bytes}
    return helm.template([values], release="exp", namespace="bench")


def _producers(objs: list[Obj]) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == "Deployment"
            and o["metadata"]["labels"]["app.kubernetes.io/component"] == "producer"}


def _order_job(objs: list[Obj]) -> Obj:
    (job,) = [o for o in objs if o["kind"] == "Job"
              and o["metadata"]["labels"]["app.kubernetes.io/component"] == "order-app"]
    return job


@pytest.mark.parametrize("mesh_bytes", [None, False])
def test_off_by_default(helm: Helm, mesh_bytes: bool | None) -> None:
    objs = _render(helm, mesh_bytes)
    for name, dep in _producers(objs).items():
        env = _env(dep["spec"]["template"]["spec"]["containers"][0])
        assert not {"SETTLERS_MESH_METRICS", "SETTLERS_WORKLOAD"} & set(env), name
    (c,) = _order_job(objs)["spec"]["template"]["spec"]["containers"]
    assert "SETTLERS_WORKLOAD" not in _env(c)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_producers_are_named_as_istio_names_them(helm: Helm,
                                                                   protocol: str) -> None:
    objs = _render(helm, True, protocol)
    deps = _producers(objs)
    assert {"coal-p0", "coal-p1"} <= set(deps)
    for name, dep in deps.items():
        pod = dep["spec"]["template"]
        env = _env(pod["spec"]["containers"][0])
        assert env["SETTLERS_MESH_METRICS"] == "true"
        # Istio's source_workload for a Deployment's pods is the Deployment's name.
        assert env["SETTLERS_WORKLOAD"] == name
        assert env["SETTLERS_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
        # The counters are on the producers' existing metrics endpoint, scraped as before.
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        port = "9091" if protocol == "grpc" else "8080"
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == port
    # The kubernetes backend's byte meter maps exactly these names to items and nodes.
    coal = dict(Workloads.from_layout(
        {"coal-0": "node-1", "coal-1": "node-2", "coal-2": "node-2"}).table)
    assert coal == {"coal-p0": ("coal", "node-1"), "coal-p1": ("coal", "node-2")}
    assert set(coal) <= set(deps)


def test_the_order_job_names_itself_by_its_jobs_name(helm: Helm) -> None:
    (c,) = _order_job(_render(helm, True))["spec"]["template"]["spec"]["containers"]
    env = _env(c)
    # From the pod's job-name label, not the template: the harness renames its Jobs.
    assert env["SETTLERS_WORKLOAD"] == {"fieldRef": {"fieldPath": "metadata.labels['job-name']"}}
    assert env["SETTLERS_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def test_the_harness_phase_values_take_the_switch(helm: Helm) -> None:
    values = PhaseValues(ECONOMY, placement={f"{i}-0": "node-1" for i in ECONOMY.names}).render()
    values["metrics"] = {"meshBytes": True}
    deps = _producers(helm.template([values], release="exp", namespace="bench"))
    assert set(deps) == set(ECONOMY.names)
    assert all(_env(d["spec"]["template"]["spec"]["containers"][0])["SETTLERS_WORKLOAD"] == n
               for n, d in deps.items())


def test_refused_with_sidecars_and_checked_by_the_schema(helm: Helm) -> None:
    with pytest.raises(HelmError, match=r"metrics\.meshBytes is for clusters without a mesh"):
        helm.template([{"metrics": {"meshBytes": True}, "istio": {"sidecarInject": True}}])
    with pytest.raises(HelmError, match="meshBytes"):
        helm.template([{"metrics": {"meshBytes": "yes"}}])
