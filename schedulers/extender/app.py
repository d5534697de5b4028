"""The extender's HTTP server (aiohttp): /prioritize, /filter, /bind, /healthz, /metrics,
/traffic (which traffic source and interval it scores with, and the last answer) and
/status (whether it sees any traffic at all: without, NetMARKS never votes).

Wire format: k8s.io/kube-scheduler/extender/v1, whose Go structs have no json
tags, so keys are Go field names: ExtenderArgs {"Pod", "Nodes", "NodeNames"};
HostPriorityList [{"Host", "Score"}]; ExtenderFilterResult {"Nodes",
"NodeNames", "FailedNodes", "FailedAndUnresolvableNodes", "Error"};
ExtenderBindingArgs {"PodName", "PodNamespace", "PodUID", "Node"} ->
ExtenderBindingResult {"Error"}.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from schedulers.extender.binder import Binder
from schedulers.extender.inflight import InFlight
from schedulers.extender.placements import Placements
from schedulers.extender.traffic_source import TrafficSource
from schedulers.k8s_json import K8sObjectError, workload_of
from schedulers.plugins.netmarks import extender_scores, raw_scores

__all__ = ["make_app"]

log = logging.getLogger("schedulers.extender")

SOURCE_KEY = web.AppKey("traffic_source", TrafficSource)
PLACEMENTS_KEY = web.AppKey("placements", Placements)
BINDER_KEY = web.AppKey("binder", Binder)
# Pods recently prioritised (ns/name -> workload), so /bind knows what it binds.
RECENT_KEY = web.AppKey("recent", OrderedDict[str, str])
INFLIGHT_KEY = web.AppKey("inflight", InFlight)
_RECENT_MAX = 10_000


class _Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("netmarks_extender_requests", "Extender requests",
                                ["verb", "code"], registry=self.registry)
        self.latency = Histogram(
            "netmarks_extender_prioritize_seconds", "Time to answer /prioritize",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1, 2, 5),
            registry=self.registry)
        self.pods = Gauge("netmarks_extender_known_pods", "Bound pods in the cache",
                          registry=self.registry)
        self.pairs = Gauge("netmarks_extender_traffic_pairs",
                           "Workload pairs with traffic data", registry=self.registry)
        self.waits = Gauge("netmarks_extender_bind_waits",
                           "Scoring calls that waited for earlier pods' bindings "
                           "(--await-binds)", registry=self.registry)
        self.timeouts = Gauge("netmarks_extender_bind_wait_timeouts",
                              "Scored pods whose binding never came within --await-binds",
                              registry=self.registry)
        self.errors = Gauge("netmarks_extender_traffic_errors",
                            "Failed traffic refreshes so far", registry=self.registry)
        self.prioritized = self.requests.labels("prioritize", "200")


METRICS_KEY = web.AppKey("metrics", _Metrics)


class _BadRequest(Exception):
    pass


async def _args(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except ValueError as exc:
        raise _BadRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _BadRequest("ExtenderArgs must be a JSON object")
    if not isinstance(body.get("Pod"), Mapping):
        raise _BadRequest("ExtenderArgs has no \"Pod\" object")
    return body


def _node_names(args: Mapping[str, Any]) -> list[str]:
    names = args.get("NodeNames")
    if isinstance(names, list):
        return [str(n) for n in names]
    nodes = args.get("Nodes")
    if isinstance(nodes, Mapping):
        out = []
        for item in nodes.get("items") or []:
            name = ((item or {}).get("metadata") or {}).get("name")
            if not isinstance(name, str):
                raise _BadRequest("a node in \"Nodes\".items has no metadata.name")
            out.append(name)
        return out
    if names is None and nodes is None:
        return []
    raise _BadRequest("\"NodeNames\" must be a list or \"Nodes\" a v1.NodeList")


def _bad(metrics: _Metrics, verb: str, message: str) -> web.Response:
    metrics.requests.labels(verb, "400").inc()
    return web.json_response({"error": message}, status=400)


async def prioritize(request: web.Request) -> web.Response:
    start = time.perf_counter()
    metrics = request.app[METRICS_KEY]
    try:
        args = await _args(request)
        names = _node_names(args)
        workload = workload_of(args["Pod"], request.app[PLACEMENTS_KEY].label_key)
    except (_BadRequest, K8sObjectError) as exc:
        return _bad(metrics, "prioritize", str(exc))
    recent = request.app[RECENT_KEY]
    meta = args["Pod"].get("metadata") or {}
    key = f"{meta.get('namespace') or 'default'}/{meta.get('name')}"
    recent[key] = workload
    if len(recent) > _RECENT_MAX:
        recent.popitem(last=False)
    traffic = await request.app[SOURCE_KEY].get()
    placements = request.app[PLACEMENTS_KEY]
    inflight = request.app[INFLIGHT_KEY]
    # --await-binds: first let the cache catch up with the pods scored before this one.
    await inflight.settle(placements, key)
    with placements.lock:
        empty: dict[str, int] = {}
        raw = raw_scores(workload, [placements.by_node.get(n, empty) for n in names],
                         placements.totals, traffic)
    scores = extender_scores(raw)
    inflight.scored(key)
    metrics.prioritized.inc()
    metrics.latency.observe(time.perf_counter() - start)
    return web.json_response([{"Host": n, "Score": s} for n, s in zip(names, scores, strict=True)])


async def filter_(request: web.Request) -> web.Response:
    metrics = request.app[METRICS_KEY]
    try:
        args = await _args(request)
        _node_names(args)
    except _BadRequest as exc:
        return _bad(metrics, "filter", str(exc))
    metrics.requests.labels("filter", "200").inc()
    # NetMARKS only scores: every candidate passes.
    return web.json_response({"Nodes": args.get("Nodes"), "NodeNames": args.get("NodeNames"),
                              "FailedNodes": {}, "FailedAndUnresolvableNodes": {},
                              "Error": ""})


async def bind(request: web.Request) -> web.Response:
    metrics = request.app[METRICS_KEY]
    try:
        args = json.loads(await request.read())
    except ValueError as exc:
        return _bad(metrics, "bind", f"body is not valid JSON: {exc}")
    if not isinstance(args, dict) or not all(
            isinstance(args.get(k), str) and args[k] for k in ("PodName", "Node")):
        return _bad(metrics, "bind", "ExtenderBindingArgs needs \"PodName\" and \"Node\"")
    namespace = args.get("PodNamespace") or "default"
    name, node = args["PodName"], args["Node"]
    key = f"{namespace}/{name}"
    placements = request.app[PLACEMENTS_KEY]
    workload = request.app[RECENT_KEY].pop(key, None) or workload_of(
        {"metadata": {"name": name}}, placements.label_key)
    # Count the pod before the API call returns: kube-scheduler is already scoring
    # the next pod, which should see this one. Undone if the binding fails.
    placements.set_pod(key, node, workload)
    try:
        await request.app[BINDER_KEY].bind(namespace, name, node)
    except Exception as exc:  # reported to kube-scheduler, which retries the pod
        placements.remove_pod(key)
        metrics.requests.labels("bind", "error").inc()
        log.warning("binding %s/%s to %s failed: %s", namespace, name, node, exc)
        return web.json_response({"Error": f"binding {namespace}/{name} to {node}: {exc}"})
    metrics.requests.labels("bind", "200").inc()
    return web.json_response({"Error": ""})


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def status_view(request: web.Request) -> web.Response:
    """Whether NetMARKS can vote at all: the traffic it sees and the pods it counts.

    /healthz only says the process answers; an extender whose Prometheus holds no
    mesh traffic (wrong URL, the mesh's metrics not scraped, no requests yet) answers
    every /prioritize with zeros and so never changes a placement. ``traffic_seen``
    false says so, ``warning`` says what to check."""
    source = request.app[SOURCE_KEY]
    traffic = await source.get()
    pods = request.app[PLACEMENTS_KEY].snapshot()
    talking = set(traffic.workloads)
    with_traffic = sorted(key for key, (_, workload) in pods.items() if workload in talking)
    last = source.last_refresh
    info = source.info()
    seen = bool(traffic)
    warning = None
    if not seen:
        warning = ("no traffic between workloads in " + str(info.get("description"))
                   + ": every score is 0 and NetMARKS does not vote. Check that this "
                   "Prometheus scrapes the mesh's byte counters (istio_request_bytes_*, "
                   "istio_tcp_*_bytes_total), e.g. with the chart's monitors.mesh PodMonitor "
                   "under the Prometheus Operator, and that the producers have served "
                   "orders since the interval's start")
    return web.json_response({
        "traffic_seen": seen,
        "last_query": None if last is None else _iso(last),
        "last_query_unix": last,
        "series": len(traffic),
        "workloads_with_traffic": len(talking),
        "pods_known": len(pods),
        "pods_with_traffic": len(with_traffic),
        "query_errors": source.errors,
        "traffic": info,
        "warning": warning,
    })


def _iso(unix_s: float) -> str:
    from schedulers.promtraffic import iso_time

    return iso_time(unix_s)


async def traffic_view(request: web.Request) -> web.Response:
    source = request.app[SOURCE_KEY]
    await source.get()  # refresh if stale: "last" then says what scores use now
    return web.json_response(source.info())


async def placements_view(request: web.Request) -> web.Response:
    """The pods the scores count and where (from the pod watch and our own binds): what
    a user or a test checks before expecting a placement to follow a partner pod."""
    pods = request.app[PLACEMENTS_KEY].snapshot()
    return web.json_response({"pods": {key: {"node": node, "workload": workload}
                                       for key, (node, workload) in sorted(pods.items())}})


async def metrics_view(request: web.Request) -> web.Response:
    m = request.app[METRICS_KEY]
    m.pods.set(len(request.app[PLACEMENTS_KEY]))
    source = request.app[SOURCE_KEY]
    m.pairs.set(len(await source.get()))
    m.errors.set(source.errors)
    m.waits.set(request.app[INFLIGHT_KEY].waits)
    m.timeouts.set(request.app[INFLIGHT_KEY].timeouts)
    return web.Response(body=generate_latest(m.registry),
                        content_type="text/plain", charset="utf-8")


def make_app(source: TrafficSource, placements: Placements,
             binder: Binder | None = None, *, await_binds_s: float = 0.0) -> web.Application:
    """The extender; with a ``binder`` it also serves the ``bind`` verb. With
    ``await_binds_s`` > 0 it scores a pod only once the pods it scored before are bound
    (waiting at most that long; see `schedulers.extender.inflight`)."""
    app = web.Application(client_max_size=64 * 2**20)  # a 5000-node NodeList is large
    app[SOURCE_KEY] = source
    app[INFLIGHT_KEY] = inflight = InFlight(await_binds_s)
    if await_binds_s > 0:
        placements.listeners.append(inflight.bound)
    app[PLACEMENTS_KEY] = placements
    app[METRICS_KEY] = _Metrics()
    app[RECENT_KEY] = OrderedDict()
    app.router.add_post("/prioritize", prioritize)
    app.router.add_post("/filter", filter_)
    if binder is not None:
        app[BINDER_KEY] = binder
        app.router.add_post("/bind", bind)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/traffic", traffic_view)
    app.router.add_get("/status", status_view)
    app.router.add_get("/placements", placements_view)
    app.router.add_get("/metrics", metrics_view)

    async def close(_: web.Application) -> None:
        await source.close()

    app.on_cleanup.append(close)
    return app
