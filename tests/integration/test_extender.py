"""The NetMARKS extender over real HTTP, with kube-scheduler's Go-field-name JSON."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from schedulers import TrafficMatrix
from schedulers.extender import Placements, PrometheusTraffic, StaticTraffic, make_app

# What kube-scheduler v1.3x POSTs to <urlPrefix>/prioritize with nodeCacheCapable=false:
# extender/v1.ExtenderArgs has no json tags -> "Pod", "Nodes", "NodeNames".
POD = {
    "metadata": {
        "name": "bread-7d9f8c6b5-k2x8p", "generateName": "bread-7d9f8c6b5-",
        "namespace": "settlers", "uid": "3f9b1c2e-0d4a-4e5b-9c1f-2a7e8d6b4c3a",
        "resourceVersion": "48213", "creationTimestamp": "2024-05-01T10:00:00Z",
        "labels": {"app": "bread", "pod-template-hash": "7d9f8c6b5"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                             "name": "bread-7d9f8c6b5", "uid": "a1b2", "controller": True,
                             "blockOwnerDeletion": True}],
    },
    "spec": {
        "containers": [{"name": "producer", "image": "settlers-testbed:0.1.0",
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "env": [{"name": "SETTLERS_ITEM", "value": "bread"}],
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}],
        "restartPolicy": "Always", "schedulerName": "default-scheduler",
        "serviceAccountName": "default", "priority": 0,
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                         "effect": "NoExecute", "tolerationSeconds": 300}],
    },
    "status": {"phase": "Pending", "qosClass": "Burstable"},
}


def node(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                   "kubernetes.io/os": "linux"}},
            "spec": {},
            "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


NODE_LIST = {"kind": "NodeList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"},
             "items": [node("node-1"), node("node-2"), node("node-3")]}
TRAFFIC = TrafficMatrix({("bread", "flour"): 900.0, ("bread", "water"): 300.0})


def running(name: str, app: str, node_name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "settlers", "labels": {"app": app}},
            "spec": {"nodeName": node_name}, "status": {"phase": "Running"}}


PODS = [running("flour-0", "flour", "node-2"), running("water-0", "water", "node-3"),
        running("fish-0", "fish", "node-1")]


def _placements() -> Placements:
    p = Placements()
    for pod in PODS:
        p.apply_event("ADDED", pod)
    return p


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(make_app(StaticTraffic(TRAFFIC), _placements()))) as c:
        yield c


async def test_prioritize_with_nodes(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/prioritize", json={"Pod": POD, "Nodes": NODE_LIST,
                                                  "NodeNames": None})
    assert resp.status == 200
    # flour node: 900 -> 10; water node: 300 -> 3.33 -> 3; fish node: 0.
    assert await resp.json() == [{"Host": "node-1", "Score": 0}, {"Host": "node-2", "Score": 10},
                                 {"Host": "node-3", "Score": 3}]


async def test_prioritize_with_node_names(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/prioritize", json={"Pod": POD, "Nodes": None,
                                                  "NodeNames": ["node-3", "node-9"]})
    assert await resp.json() == [{"Host": "node-3", "Score": 10}, {"Host": "node-9", "Score": 0}]


async def test_pod_watch_events_move_the_scores() -> None:
    placements = _placements()
    async with TestClient(TestServer(make_app(StaticTraffic(TRAFFIC), placements))) as c:
        placements.apply_event("DELETED", PODS[0])  # flour-0 went away
        resp = await c.post("/prioritize", json={"Pod": POD, "NodeNames": ["node-2", "node-3"]})
        assert await resp.json() == [{"Host": "node-2", "Score": 0},
                                     {"Host": "node-3", "Score": 10}]


async def test_placements_show_what_the_scores_count() -> None:
    placements = _placements()
    async with TestClient(TestServer(make_app(StaticTraffic(TRAFFIC), placements))) as c:
        placements.apply_event("DELETED", PODS[0])
        body = await (await c.get("/placements")).json()
    assert body == {"pods": {"settlers/fish-0": {"node": "node-1", "workload": "fish"},
                             "settlers/water-0": {"node": "node-3", "workload": "water"}}}


async def test_filter_passes_everything_through(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/filter", json={"Pod": POD, "Nodes": NODE_LIST, "NodeNames": None})
    body = await resp.json()
    assert resp.status == 200
    assert body == {"Nodes": NODE_LIST, "NodeNames": None, "FailedNodes": {},
                    "FailedAndUnresolvableNodes": {}, "Error": ""}


async def test_malformed_requests_get_400(client: TestClient[Any, Any]) -> None:
    for body in (b"{not json", b"[]", b'{"Nodes": null}', b'{"Pod": {}, "NodeNames": "x"}'):
        resp = await client.post("/prioritize", data=body)
        assert resp.status == 400, body
        assert "error" in await resp.json()
    assert (await client.post("/filter", data=b"nope")).status == 400


async def test_health_and_metrics(client: TestClient[Any, Any]) -> None:
    assert await (await client.get("/healthz")).text() == "ok"
    await client.post("/prioritize", json={"Pod": POD, "NodeNames": ["node-1"]})
    text = await (await client.get("/metrics")).text()
    assert 'netmarks_extender_requests_total{code="200",verb="prioritize"} 1.0' in text
    assert "netmarks_extender_known_pods 3.0" in text
    assert "netmarks_extender_traffic_pairs 2.0" in text


async def test_silent_prometheus_gives_zero_scores_fast() -> None:
    # A server that accepts connections and never answers: the worst case.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    source = PrometheusTraffic(url, timeout_s=0.5, ttl_s=30)
    try:
        async with TestClient(TestServer(make_app(source, _placements()))) as c:
            start = time.perf_counter()
            resp = await c.post("/prioritize", json={"Pod": POD, "NodeNames": ["node-2"]})
            first = time.perf_counter() - start
            assert await resp.json() == [{"Host": "node-2", "Score": 0}]
            assert first < 2.0
            start = time.perf_counter()
            await c.post("/prioritize", json={"Pod": POD, "NodeNames": ["node-2"]})
            assert time.perf_counter() - start < 0.2  # the failure is cached
            assert source.errors == 1
    finally:
        silent.close()


async def test_unreachable_prometheus_gives_zero_scores() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: connection refused
    source = PrometheusTraffic(f"http://127.0.0.1:{port}", timeout_s=1.0)
    async with TestClient(TestServer(make_app(source, _placements()))) as c:
        resp = await c.post("/prioritize", json={"Pod": POD, "NodeNames": ["node-2"]})
        assert await resp.json() == [{"Host": "node-2", "Score": 0}]


class RecordingBinder:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.fail = fail

    async def bind(self, namespace: str, pod: str, node: str) -> None:
        if self.fail:
            raise RuntimeError("pods \"bread\" is forbidden")
        self.calls.append((namespace, pod, node))


async def test_bind_verb_counts_the_pod_at_once() -> None:
    binder = RecordingBinder()
    placements = _placements()
    async with TestClient(TestServer(make_app(StaticTraffic(TRAFFIC), placements, binder))) as c:
        flour = {"metadata": {"name": "flour-7c5d9-abcde", "namespace": "settlers",
                              "labels": {"app": "flour"}}}
        await c.post("/prioritize", json={"Pod": flour, "NodeNames": ["node-1"]})
        resp = await c.post("/bind", json={"PodName": "flour-7c5d9-abcde",
                                           "PodNamespace": "settlers", "PodUID": "u-1",
                                           "Node": "node-1"})
        assert resp.status == 200 and await resp.json() == {"Error": ""}
        assert binder.calls == [("settlers", "flour-7c5d9-abcde", "node-1")]
        # bread now also pulls toward node-1 (half of flour's 900 B/s: 2 replicas now).
        resp = await c.post("/prioritize", json={"Pod": POD, "NodeNames": ["node-1", "node-2"]})
        assert await resp.json() == [{"Host": "node-1", "Score": 10},
                                     {"Host": "node-2", "Score": 10}]
        assert (await c.post("/bind", json={"PodName": "x"})).status == 400


async def test_bind_failure_is_reported_in_the_result() -> None:
    placements = _placements()
    async with TestClient(TestServer(make_app(StaticTraffic(TRAFFIC), placements,
                                              RecordingBinder(fail=True)))) as c:
        resp = await c.post("/bind", json={"PodName": "bread-0", "PodNamespace": "s",
                                           "Node": "node-1"})
        body = await resp.json()
        assert resp.status == 200 and "forbidden" in body["Error"]
        # The pod was counted before the API call (optimistically); that is undone.
        assert "bread" not in placements.totals and len(placements) == 3


async def test_no_bind_route_without_a_binder(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/bind", json={"PodName": "bread-0", "Node": "node-1"})
    assert resp.status in (404, 405)


async def wait_healthy(session: aiohttp.ClientSession, base: str,
                       proc: subprocess.Popen[bytes]) -> None:
    """Until GET /healthz answers 200; start-up takes seconds on a loaded machine."""
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"the extender exited with {proc.returncode}"
        try:
            async with session.get(base + "/healthz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            assert time.monotonic() < deadline, "the extender did not come up in 60 s"
            await asyncio.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
async def test_real_extender_process(tmp_path: Path) -> None:
    traffic = tmp_path / "traffic.csv"
    TRAFFIC.to_csv(traffic)
    pods = tmp_path / "pods.json"
    pods.write_text(json.dumps({"kind": "PodList", "apiVersion": "v1", "items": PODS}))
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "schedulers.cli", "netmarks-extender", "--traffic", str(traffic),
         "--pods", str(pods), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, base, proc)
            # Exactly what kube-scheduler sends: Content-Type application/json, Go keys.
            body = json.dumps({"Pod": POD, "Nodes": NODE_LIST, "NodeNames": None})
            async with session.post(base + "/prioritize", data=body,
                                    headers={"Content-Type": "application/json"}) as r:
                assert r.status == 200
                scores = await r.json()
        assert scores == [{"Host": "node-1", "Score": 0}, {"Host": "node-2", "Score": 10},
                          {"Host": "node-3", "Score": 3}]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
