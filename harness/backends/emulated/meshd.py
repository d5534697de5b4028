"""The mesh as its own process: ``python -m harness.backends.emulated.meshd CONFIG.json``.

Running the proxies outside the harness keeps their CPU time away from the order
app's event loop, and lets a detached ``harness cluster up`` own them. The process
opens every listener, then prints ONE JSON line to stdout (the ports) and serves a
small control API on 127.0.0.1:

- ``GET /metrics``   Prometheus text (istio_* and settlers_link_* series)
- ``GET /traffic``   cumulative byte counts per flow key, as JSON rows
- ``PUT /placement`` ``{pod: node, ...}``: relayout, effective for the next chunk
- ``PUT /endpoints`` ``{pod: {"port": int, "ready": bool, "serving": bool}, ...}`` (each
  key optional; ``serving``: among its service's endpoints)
- ``POST /pods`` ``{"pod", "workload", "node", "port", "inputs": [service, ...],
  "serving": bool}``: a new pod; answers ``{"egress": {service: port}}``
- ``POST /retire`` ``{"pod"}``: never picked again, egress listeners closed, counters
  kept; answers ``{"closed": [port, ...]}``
- ``GET /flows``     ``{pod: {"open": n, "connecting": n}}``, flows relayed to each pod
- ``PUT /degrade``   ``{"node", "latency_ms", "bandwidth_mbps"}`` (null: keep): every
  link touching the node, from now on
- ``GET /healthz``

Config (JSON): ``{"link": {"latency_ms", "bandwidth_mbps"}, "pods": {pod: {"workload",
"port"}}, "placement": {pod: node}, "egress": [[src_pod, service, port or 0], ...],
"ingress": [service, ...]}``, and optionally ``"topology"`` (a
``results.topology.Topology`` as JSON: links per pair of nodes instead of ``link``).
"""

from __future__ import annotations

import asyncio
import json
import math
import signal
import sys
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from harness.backends.emulated.mesh import Endpoint, Mesh
from harness.backends.emulated.telemetry import MeshCollector
from results.links import LinkProfile
from results.topology import Topology

__all__ = ["main", "serve"]


def _control_app(mesh: Mesh) -> web.Application:
    registry = CollectorRegistry()
    registry.register(MeshCollector(
        mesh.counters, mesh.workload_of,
        lambda: {p: n for p, n in mesh.placement.items() if not mesh.endpoints[p].retired}))

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def traffic(_: web.Request) -> web.Response:
        workloads = {pod: ep.workload for pod, ep in mesh.endpoints.items()}
        return web.json_response(mesh.counters.records(workloads))

    async def placement(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object {pod: node}")
            mesh.set_placement({str(k): str(v) for k, v in body.items()})
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"placement": mesh.placement})

    async def endpoints(request: web.Request) -> web.Response:
        body = await request.json()
        unknown = sorted(set(body) - set(mesh.endpoints))
        if unknown:
            return web.json_response({"error": f"unknown pod(s): {unknown}"}, status=400)
        try:
            for pod, ep in body.items():
                mesh.set_endpoint(pod, port=ep.get("port"), ready=ep.get("ready"),
                                  serving=ep.get("serving"))
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    async def add_pod(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            egress = await mesh.add_pod(
                str(body["pod"]), str(body["workload"]), str(body["node"]), int(body["port"]),
                [str(s) for s in body.get("inputs", [])], serving=bool(body.get("serving")))
        except (KeyError, TypeError, ValueError, OSError) as exc:
            return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)
        return web.json_response({"egress": egress})

    async def retire(request: web.Request) -> web.Response:
        body = await request.json()
        pod = str(body.get("pod"))
        if pod not in mesh.endpoints:
            return web.json_response({"error": f"unknown pod {pod!r}"}, status=400)
        return web.json_response({"closed": await mesh.retire(pod)})

    async def flows(_: web.Request) -> web.Response:
        return web.json_response(mesh.open_flows())

    async def degrade(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            latency, bandwidth = body.get("latency_ms"), body.get("bandwidth_mbps")
            mesh.degrade(str(body["node"]), None if latency is None else float(latency),
                         None if bandwidth is None else float(bandwidth))
        except (KeyError, TypeError, ValueError) as exc:
            return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)
        return web.json_response({"ok": True})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True, "precise_timers": mesh.timers.precise})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/traffic", traffic)
    app.router.add_put("/placement", placement)
    app.router.add_put("/endpoints", endpoints)
    app.router.add_post("/pods", add_pod)
    app.router.add_post("/retire", retire)
    app.router.add_get("/flows", flows)
    app.router.add_put("/degrade", degrade)
    app.router.add_get("/healthz", healthz)
    return app


async def serve(config: dict[str, Any]) -> None:
    """Run the mesh described by ``config`` until SIGTERM/SIGINT."""
    link = config["link"]
    bandwidth = link["bandwidth_mbps"]   # JSON has no infinity: null means unlimited
    profile = LinkProfile(float(link["latency_ms"]),
                          math.inf if bandwidth is None else float(bandwidth))
    endpoints = {pod: Endpoint(pod, str(p["workload"]), int(p["port"]))
                 for pod, p in config["pods"].items()}
    topology = (Topology.model_validate(config["topology"]) if config.get("topology")
                else None)
    mesh = Mesh(profile, endpoints, config["placement"], topology=topology)
    egress: dict[str, dict[str, int]] = {}
    for src_pod, service, port in config["egress"]:
        egress.setdefault(src_pod, {})[service] = await mesh.open_listener(service, src_pod,
                                                                           port=port)
    ingress = {service: await mesh.open_listener(service) for service in config["ingress"]}

    runner = web.AppRunner(_control_app(mesh), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    control_port = runner.addresses[0][1]

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"control": control_port, "egress": egress, "ingress": ingress}), flush=True)
    await stop.wait()
    await runner.cleanup()
    await mesh.close()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m harness.backends.emulated.meshd CONFIG.json")
    config = json.loads(Path(args[0]).read_text())
    try:
        import uvloop  # a faster loop halves the relay's per-hop overhead
    except ImportError:
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))


if __name__ == "__main__":
    main()
