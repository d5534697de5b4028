"""The Kubernetes-facing parts (pod watch, Binding API) through the official client,
against a small fake API server speaking the real REST paths and watch stream."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from schedulers import get_policy
from schedulers.extender import KubernetesBinder, KubernetesPodWatcher, Placements
from schedulers.firmament_k8s import FirmamentScheduler, KubernetesAPI

pytestmark = pytest.mark.slow  # importing the kubernetes client alone takes seconds here


def _pod(name: str, app: str, node: str | None, rv: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "x",
                                            "resources": {"requests": {"cpu": "100m"}}}],
                            "schedulerName": "firmament"}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "settlers", "resourceVersion": rv,
                         "labels": {"app": app}},
            "spec": spec, "status": {"phase": "Running" if node else "Pending"}}


class FakeAPIServer:
    """GET /api/v1/pods (list and ?watch=1), GET /api/v1/nodes, POST bindings."""

    def __init__(self) -> None:
        self.pods = {"flour-0": _pod("flour-0", "flour", "node-1", "1"),
                     "bread-0": _pod("bread-0", "bread", None, "2")}
        self.events: asyncio.Queue[dict[str, Any]] | None = None
        self.bindings: list[dict[str, Any]] = []
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._started = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        assert self._started.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_get("/api/v1/pods", self.pods_view)
        app.router.add_get("/api/v1/nodes", self.nodes_view)
        # The client posts v1.Binding to the namespace's collection; the pod's
        # subresource is the other path the API server accepts.
        app.router.add_post("/api/v1/namespaces/{ns}/bindings", self.bind_view)
        app.router.add_post("/api/v1/namespaces/{ns}/pods/{name}/binding", self.bind_view)
        self.runner = runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.events = asyncio.Queue()
        self._started.set()
        self.loop.run_forever()

    def emit(self, kind: str, pod: dict[str, Any]) -> None:
        assert self.events is not None
        self.loop.call_soon_threadsafe(self.events.put_nowait, {"type": kind, "object": pod})

    async def pods_view(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") not in ("1", "true", "True"):
            return web.json_response({"apiVersion": "v1", "kind": "PodList",
                                      "metadata": {"resourceVersion": "2"},
                                      "items": list(self.pods.values())})
        resp = web.StreamResponse()
        await resp.prepare(request)
        assert self.events is not None
        try:
            while True:
                event = await asyncio.wait_for(self.events.get(), 2)
                await resp.write(json.dumps(event).encode() + b"\n")
        except TimeoutError:
            pass
        return resp

    async def nodes_view(self, request: web.Request) -> web.Response:
        node = {"metadata": {"name": "node-1", "labels": {}},
                "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                           "conditions": [{"type": "Ready", "status": "True"}]}}
        return web.json_response({"apiVersion": "v1", "kind": "NodeList",
                                  "metadata": {}, "items": [node]})

    async def bind_view(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bindings.append({"path": request.path, **body})
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Success",
                                  "code": 201}, status=201)


@pytest.fixture
def api_server(tmp_path: Path) -> Iterator[tuple[FakeAPIServer, str]]:
    server = FakeAPIServer()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{server.port}"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "t"}}]}))
    yield server, str(kubeconfig)
    asyncio.run_coroutine_threadsafe(server.runner.cleanup(), server.loop).result(10)
    server.loop.call_soon_threadsafe(server.loop.stop)


def _wait(cond: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_pod_watch_follows_the_api_server(api_server: tuple[FakeAPIServer, str]) -> None:
    server, kubeconfig = api_server
    placements = Placements()
    watcher = KubernetesPodWatcher(placements, kubeconfig)
    watcher.start()
    try:
        assert watcher.synced.wait(10)
        assert placements.by_node == {"node-1": {"flour": 1}}  # the pending pod is not counted
        server.emit("MODIFIED", _pod("bread-0", "bread", "node-2", "3"))
        _wait(lambda: placements.by_node.get("node-2") == {"bread": 1})
        server.emit("DELETED", _pod("flour-0", "flour", "node-1", "4"))
        _wait(lambda: "flour" not in placements.totals)
    finally:
        watcher.stop()


def test_firmament_binds_through_the_binding_api(api_server: tuple[FakeAPIServer, str]) -> None:
    server, kubeconfig = api_server
    report = FirmamentScheduler(KubernetesAPI(kubeconfig), get_policy("firmament")).run_once()
    assert report.bound == [("settlers/bread-0", "node-1")] and not report.failed
    [binding] = server.bindings
    assert binding["path"] == "/api/v1/namespaces/settlers/bindings"
    assert binding["target"] == {"apiVersion": "v1", "kind": "Node", "name": "node-1"}
    assert binding["metadata"]["name"] == "bread-0"


async def test_extender_binder_posts_a_binding(api_server: tuple[FakeAPIServer, str]) -> None:
    server, kubeconfig = api_server
    await KubernetesBinder(kubeconfig).bind("settlers", "bread-0", "node-1")
    [binding] = server.bindings
    assert binding["target"]["name"] == "node-1" and binding["metadata"]["name"] == "bread-0"


def test_firmament_binds_in_bulk_through_the_binding_api(
        api_server: tuple[FakeAPIServer, str]) -> None:
    """Many pending pods: the binder's binds go out concurrently over one asyncio
    session (schedulers.bulk_bind), each to the same Binding endpoint."""
    server, kubeconfig = api_server
    api = KubernetesAPI(kubeconfig)
    binds = [("settlers", f"p-{i}", f"node-{i % 3}") for i in range(30)]
    assert api.bind_many(binds, 8) == [None] * 30
    assert sorted((b["metadata"]["name"], b["target"]["name"]) for b in server.bindings) == \
        sorted((p, n) for _, p, n in binds)
    assert {b["path"] for b in server.bindings} == {"/api/v1/namespaces/settlers/bindings"}
